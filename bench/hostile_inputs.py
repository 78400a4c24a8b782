"""Host-side work on hostile repository files stays bounded: wall time and peak memory.

Two inputs from issue #11, each measured in a fresh process (so peak RSS is
the case's own) against an ordinary file of the same size measured the same way:
- a 1 MB single-line file opened with repo_browser.open_file, token counting
  with the real o200k codec (the line is cut before it is counted);
- a 500 KB deeply nested Python file (100,000 nested calls, one per line)
  indexed for the repo map (refused by a bracket-depth scan before any parse);
  the baseline is an ordinary 500 KB module of 8,600 functions, fully parsed.
Goal: each at most a few seconds and a few hundred MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, canonical_vocab_dir

CASE = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
kind, root, name, vocab = sys.argv[2:6]
started = time.perf_counter()
if kind == "open_file":
    from gptoss_agent.agent.model.harmony import HarmonyCodec
    from gptoss_agent.tools.context import ToolContext
    from gptoss_agent.tools.files import open_file
    ctx = ToolContext(workspace=Path(root))
    ctx.count_tokens = HarmonyCodec.load(Path(vocab)).count
    started = time.perf_counter()  # the codec load is not the file's cost
    result = open_file.function(ctx, path=name)
    note = f"ok={result.ok} output={len(result.output):,} chars"
else:
    from gptoss_agent.tools.repomap import build_index
    index = build_index(Path(root), [name], cache_file=Path(root).parent / "cache" / "map.json")
    note = f"mapped={len(index.files)} skipped={index.skipped}"
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "note": note}))
"""


def measure(kind: str, root: Path, name: str, vocab: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CASE, str(ROOT), kind, str(root), name, str(vocab)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    vocab = canonical_vocab_dir()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        (root / "flat.txt").write_text("=" * 1_000_000)
        (root / "lines.txt").write_text(("x = 1  # an ordinary line of text\n") * 29_412)  # ~1 MB
        depth = 100_000
        (root / "nested.py").write_text("x = " + "f(\n" * depth + ")\n" * depth)
        plain = "".join(f"def function_{i}(a, b):\n    return helper(a, b) + {i}\n\n\n" for i in range(11_000))
        (root / "plain.py").write_text(plain[:len((root / "nested.py").read_text())])
        cases = [("1 MB single-line file, open_file", "open_file", "flat.txt", "lines.txt"),
                 ("500 KB deeply nested source, repo map", "index", "nested.py", "plain.py")]
        print(f"{'case':40} {'seconds':>8} {'peak MB':>8} {'baseline s':>10} {'ratio':>6}")
        for title, kind, hostile, ordinary in cases:
            bad = measure(kind, root, hostile, vocab)
            good = measure(kind, root, ordinary, vocab)
            ratio = bad["seconds"] / good["seconds"] if good["seconds"] else float("inf")
            print(f"{title:40} {bad['seconds']:8.3f} {bad['peak_mb']:8.0f} {good['seconds']:10.3f} {ratio:6.2f}")
            print(f"{'':40} hostile: {bad['note']}")
            print(f"{'':40} baseline: {good['note']}")


if __name__ == "__main__":
    main()
