"""The conversation keeps the model's own tokens and drops reasoning only per the Harmony rule."""

from __future__ import annotations

from gptoss_agent.agent.conversation import Conversation
from gptoss_agent.agent.model.harmony_stream import HarmonyStreamParser


def complete(conversation, codec, text):
    """Append a completion as the loop does: the generated tokens and their parse."""
    tokens = codec.encode_with_specials(text)
    parser = HarmonyStreamParser(codec.token_bytes)
    parser.feed_all(tokens)
    conversation.add_completion(tokens, parser.finish(), clean_length=None)
    return tokens


def reference_render(codec, messages):
    """openai-harmony's own renderer, the reference for the Harmony history rules."""
    from openai_harmony import Conversation as HConversation

    return codec.decode(codec._encoding.render_conversation_for_completion(
        HConversation.from_messages(messages), __import__("openai_harmony").Role.ASSISTANT))


def harmony_messages(codec):
    from openai_harmony import Author, Message, Role

    return {
        "user1": Message.from_role_and_content(Role.USER, "What is the weather in SF?"),
        "analysis1": Message.from_role_and_content(Role.ASSISTANT, "Need the tool.").with_channel("analysis"),
        "call1": Message.from_role_and_content(Role.ASSISTANT, '{"location": "SF"}').with_channel("commentary")
        .with_recipient("functions.weather").with_content_type("<|constrain|>json"),
        "result1": Message.from_author_and_content(Author.new(Role.TOOL, "functions.weather"), "sunny")
        .with_recipient("assistant").with_channel("commentary"),
        "analysis2": Message.from_role_and_content(Role.ASSISTANT, "It is sunny.").with_channel("analysis"),
        "final1": Message.from_role_and_content(Role.ASSISTANT, "Sunny.").with_channel("final"),
        "user2": Message.from_role_and_content(Role.USER, "Thanks! And tomorrow?"),
    }


def build(codec, upto_second_user: bool):
    conversation = Conversation(codec)
    conversation.add_user("What is the weather in SF?")
    complete(conversation, codec, '<|channel|>analysis<|message|>Need the tool.<|end|><|start|>assistant to=functions.weather'
                                  '<|channel|>commentary <|constrain|>json<|message|>{"location": "SF"}<|call|>')
    conversation.add_tool_result("functions.weather", "sunny")
    complete(conversation, codec, "<|channel|>analysis<|message|>It is sunny.<|end|><|start|>assistant<|channel|>final"
                                  "<|message|>Sunny.<|return|>")
    if upto_second_user:
        conversation.add_user("Thanks! And tomorrow?")
    return conversation


def test_analysis_is_kept_while_the_turn_is_ongoing(codec):
    conversation = Conversation(codec)
    conversation.add_user("What is the weather in SF?")
    complete(conversation, codec, '<|channel|>analysis<|message|>Need the tool.<|end|><|start|>assistant to=functions.weather'
                                  '<|channel|>commentary <|constrain|>json<|message|>{"location": "SF"}<|call|>')
    conversation.add_tool_result("functions.weather", "sunny")
    m = harmony_messages(codec)
    want = reference_render(codec, [m["user1"], m["analysis1"], m["call1"], m["result1"]])
    assert codec.decode(conversation.prompt()) == want
    assert "Need the tool." in want


def test_reasoning_of_a_finished_turn_is_dropped_like_the_reference_renderer(codec):
    conversation = build(codec, upto_second_user=True)
    m = harmony_messages(codec)
    want = reference_render(codec, [m[k] for k in ("user1", "analysis1", "call1", "result1", "analysis2",
                                                    "final1", "user2")])
    got = codec.decode(conversation.prompt())
    assert got == want
    assert "Need the tool." not in got and "It is sunny." not in got and '{"location": "SF"}' in got


def test_each_step_extends_the_previous_prompt(codec):
    """Within a turn the prompt only grows at the end: the KV cache can reuse all of it."""
    conversation = Conversation(codec)
    conversation.add_user("Fix it.")
    before = conversation.prompt()
    generated = complete(conversation, codec, '<|channel|>commentary to=functions.run_tests<|message|>{}<|call|>')
    after_call = conversation.prompt()
    assert after_call[:len(before)] == before
    assert after_call[len(before):len(before) + len(generated)] == generated  # the model's own tokens, verbatim
    conversation.add_tool_result("functions.run_tests", "1 failed")
    assert conversation.prompt()[:len(after_call) - len(codec.assistant_start)] == after_call[:-len(codec.assistant_start)]


def test_return_is_stored_as_end_and_an_open_message_is_closed(codec):
    conversation = Conversation(codec)
    conversation.add_user("hi")
    complete(conversation, codec, "<|channel|>final<|message|>hello<|return|>")
    assert conversation.segments[-1].tokens[-1] == 200_007
    complete(conversation, codec, "<|channel|>final<|message|>cut off mid")
    assert codec.decode(conversation.segments[-1].tokens).endswith("cut off mid<|end|>")


def test_model_impersonating_a_tool_is_cut_at_the_last_whole_message(codec):
    conversation = Conversation(codec)
    conversation.add_user("hi")
    text = ('<|channel|>commentary to=functions.read<|message|>{}<|end|>'
            '<|start|>functions.read to=assistant<|channel|>commentary<|message|>made up')
    tokens = codec.encode_with_specials(text)
    parser = HarmonyStreamParser(codec.token_bytes)
    stop = next(i for i, t in enumerate(tokens) if parser.feed(t))
    conversation.add_completion(tokens[:stop + 1], parser.finish(), clean_length=parser.clean_length)
    assert codec.decode(conversation.segments[-1].tokens) == (
        "<|start|>assistant<|channel|>commentary to=functions.read<|message|>{}<|end|>")


def test_a_notice_is_a_developer_message_that_opens_no_turn(codec):
    conversation = Conversation(codec)
    conversation.add_user("fix it")
    conversation.add_notice("Your last message could not be used: no final answer.")
    assert conversation.turn == 1 and conversation.segments[-1].kind == "notice"
    assert codec.decode(conversation.segments[-1].tokens).startswith("<|start|>developer<|message|>")


def test_own_words_are_an_assistant_commentary_message_kept_after_the_turn_ends(codec):
    conversation = Conversation(codec)
    conversation.add_user("fix it")
    conversation.add_own_words("Summary: add() subtracts; fix calc.py.")
    conversation.finished_turns.add(1)
    conversation.add_user("next")
    text = codec.decode(conversation.prompt())
    assert "<|start|>assistant<|channel|>commentary<|message|>Summary: add() subtracts; fix calc.py.<|end|>" in text
