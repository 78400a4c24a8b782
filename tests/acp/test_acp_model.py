"""`gptoss-agent acp` with real llama.cpp (the tiny random-weight gpt-oss): the model loads in the
background after `initialize`, a prompt runs on it, and llama.cpp never writes into the protocol stream."""

from __future__ import annotations

import asyncio

import pytest

from tests.acp.harness import RecordingClient, running_agent, start
from tests.fixtures.repos import make_calc_repo

pytest.importorskip("acp")


@pytest.mark.model
def test_a_prompt_runs_on_the_embedded_model_loaded_after_initialize(tiny_gguf, vocab_dir, tmp_path):
    repo = make_calc_repo(tmp_path / "project")
    config = tmp_path / "config.toml"
    config.write_text("n_ctx = 4096\nmax_tokens_per_step = 16\nmap_tokens = 0\n")
    env = {"GPTOSS_AGENT_STATE_DIR": str(tmp_path / "state"), "GPTOSS_AGENT_CONFIG": str(config)}
    client = RecordingClient()

    async def scenario():
        async with running_agent(client, "--backend", "llama", "--model", str(tiny_gguf), "--max-steps", "1",
                                 cwd=repo, env=env, stderr_path=tmp_path / "stderr") as (conn, _):
            await start(conn)
            session = await conn.new_session(cwd=str(repo), mcp_servers=[])
            return await conn.prompt(session_id=session.session_id, prompt=[{"type": "text", "text": "Hello"}])

    answer = asyncio.run(asyncio.wait_for(scenario(), 240))
    assert answer.stop_reason == "max_turn_requests"  # one step, random weights: the step budget ends it
    thoughts = client.text("agent_thought_chunk")
    assert "model loaded in" in thoughts and tiny_gguf.name in thoughts
