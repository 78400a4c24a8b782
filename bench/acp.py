"""`gptoss-agent acp`: how soon an editor hears back, and what streaming over ACP costs, in one run.

1. Process start → the `initialize` answer (goal < 0.5 s; the model loads afterwards), beside a bare
   `python -c pass` measured in the same run.
2. The same replay (a long final answer, streamed token by token) through `exec --json` and through
   an ACP session driven by the SDK's client: the turn's time, divided by the chunks streamed, and the
   ratio ACP / exec (goal <= 1.1x). exec's turn is its run_started → run_finished lines (which also
   hold its repo map, a few ms on this small repository); the ACP turn is a warm session's prompt →
   its stop reason. Measured without a per-token delay (pure overhead) and at 2 ms a token (a fast
   GPU's pace). The machine's load moves these figures by a few percent: compare within one run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, canonical_vocab_dir, median

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # this file is
# named acp.py: the SDK package `acp` must not resolve to it

from tests.acp.harness import RecordingClient, agent_env, running_agent, start
from tests.fixtures.repos import final, make_calc_repo, write_replay

WORDS = 1500
RUNS = 5


def time_to_initialize(env: dict[str, str], cwd: Path) -> float:
    request = (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}})
               + "\n").encode()
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "acp", "--backend", "replay:/nonexistent.json"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=cwd,
                               env=agent_env(env))
    process.stdin.write(request)
    process.stdin.flush()
    line = process.stdout.readline()
    took = time.perf_counter() - started
    process.stdin.close()
    process.wait(30)
    assert json.loads(line)["result"]["protocolVersion"] == 1
    return took


def bare_python() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def exec_turn(replay: Path, repo: Path, env: dict[str, str]) -> float:
    process = subprocess.Popen([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "exec", "--json", "--backend", f"replay:{replay}",
                                "--cwd", str(repo), "Explain"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               env=agent_env(env), text=True)
    began = ended = None
    for line in process.stdout:
        kind = json.loads(line)["type"]
        if kind == "run_started":
            began = time.perf_counter()
        elif kind == "run_finished":
            ended = time.perf_counter()
    process.wait(60)
    return ended - began


async def acp_turns(replay: Path, repo: Path, env: dict[str, str], runs: int) -> tuple[list[float], int]:
    client = RecordingClient()
    times = []
    async with running_agent(client, "--backend", f"replay:{replay}", cwd=repo, env=env) as (conn, _):
        await start(conn)
        session = await conn.new_session(cwd=str(repo), mcp_servers=[])
        await conn.prompt(session_id=session.session_id, prompt=[{"type": "text", "text": "warm up"}])
        for _ in range(runs):
            before = len(client.updates)
            started = time.perf_counter()
            await conn.prompt(session_id=session.session_id, prompt=[{"type": "text", "text": "Explain"}])
            times.append(time.perf_counter() - started)
        chunks = sum(1 for _, u in client.updates[before:] if u.session_update == "agent_message_chunk")
    return times, chunks


def main() -> None:
    cache = Path(tempfile.mkdtemp(prefix="gptoss-bench-acp-"))
    try:
        shutil.copytree(canonical_vocab_dir(), cache / "vocab")
        env = {"GPTOSS_AGENT_CACHE_DIR": str(cache), "GPTOSS_AGENT_STATE_DIR": str(cache / "state"),
               "GPTOSS_AGENT_CONFIG": str(cache / "config.toml")}
        repo = make_calc_repo(cache / "repo")
        bare = median([bare_python() for _ in range(RUNS)])
        init = median([time_to_initialize(env, repo) for _ in range(RUNS)])
        print(f"python -c pass                    {bare * 1000:7.1f} ms")
        print(f"acp: start → initialize answered  {init * 1000:7.1f} ms  ({init / bare:.2f}x bare python; "
              "goal < 500 ms)")
        answer = " ".join(f"word{i}" for i in range(WORDS))
        for delay in ("0", "0.002"):
            turn_env = {**env, "GPTOSS_AGENT_REPLAY_TOKEN_DELAY": delay}
            exec_replay = write_replay(cache / "exec.json", [final(answer)])
            exec_time = median([exec_turn(exec_replay, repo, turn_env) for _ in range(RUNS)])
            acp_replay = write_replay(cache / "acp.json", [final("ok")] + [final(answer)] * RUNS)
            times, chunks = asyncio.run(acp_turns(acp_replay, repo, turn_env, RUNS))
            acp_time = median(times)
            tokens = len(__import__("gptoss_agent.agent.model.harmony", fromlist=["HarmonyCodec"]).HarmonyCodec.load(
                cache / "vocab").encode_with_specials(final(answer)))
            print(f"\n{tokens} tokens streamed, {delay} s a token:")
            print(f"  exec --json turn   {exec_time * 1000:8.1f} ms")
            print(f"  acp prompt turn    {acp_time * 1000:8.1f} ms  in {chunks} message chunks "
                  f"({tokens / max(chunks, 1):.1f} tokens a chunk after coalescing)")
            print(f"  added per token    {(acp_time - exec_time) / tokens * 1e6:8.1f} µs;  "
                  f"ratio acp/exec {acp_time / exec_time:.2f}x (goal <= 1.1x)")
    finally:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
