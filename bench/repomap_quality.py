"""Does the repo map show what matters? Recall of each project's documented public API in a 1024-token map,
for `gptoss-agent map` and for Aider's RepoMap on the same trees in the same run, plus the speed ratios.

The repositories are real upstream trees (tests, examples and benchmarks included, as a user's checkout has
them) fetched once from the package registries this machine reaches: Debian source packages (the upstream
`.orig` tarball, through `apt-get source --download-only` with a private deb-src list, so the system's apt
configuration is untouched) and npm tarballs (`npm pack`). They are cached under
$GPTOSS_BENCH_CACHE/repomap-quality; only this script downloads, never the product or the tests.

The key names per repository come from the project's own documentation (the page is named at the top of
each bench/repomap_quality_keys/*.txt), never from either tool's output. A name counts as found when it
appears as a whole word in the map text; both tools are judged by the same rule.

Aider runs in a separate venv: AIDER_PYTHON=/path/to/venv/bin/python (aider-chat 0.86.2), as in
bench/repomap.py. Without it only our figures print.

    python bench/repomap_quality.py [--only NAME ...] [--focus]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import CACHE, canonical_vocab_dir

KEYS = Path(__file__).resolve().parent / "repomap_quality_keys"
WORK = CACHE / "repomap-quality"
DEB_LIST = "deb-src http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian bookworm main\n"

AIDER_SCRIPT = """
import sys, subprocess
from aider.io import InputOutput
from aider.models import Model
from aider.repomap import RepoMap
root = sys.argv[1]
files = [root + "/" + f for f in subprocess.run(["git", "ls-files"], cwd=root, capture_output=True,
                                                text=True).stdout.splitlines()]
rm = RepoMap(map_tokens=1024, root=root, main_model=Model("gpt-4o"), io=InputOutput(yes=True), verbose=False)
sys.stdout.write(rm.get_repo_map([], files) or "")
"""


@dataclass(frozen=True)
class Repo:
    name: str
    language: str
    registry: str  # "debian" (source package), "debian-bin" (a -dev package that ships the source), "npm", "pypi"
    package: str
    inside: str = ""  # for debian-bin: the folder of the package that holds the project


REPOS = [
    Repo("django", "python", "debian", "python-django"),
    Repo("requests", "python", "pypi", "requests==2.32.3"),
    Repo("express", "javascript", "debian", "node-express"),
    Repo("rxjs", "typescript", "npm", "rxjs@7.8.1"),
    Repo("gorilla-mux", "go", "debian", "golang-github-gorilla-mux"),
    Repo("serde_json", "rust", "debian-bin", "librust-serde-json-dev", "usr/share/cargo/registry/serde_json-*"),
    Repo("cjson", "c", "debian", "cjson"),
    Repo("jsoup", "java", "debian", "jsoup"),
    Repo("nlohmann-json", "c++", "debian", "nlohmann-json3"),
    Repo("rack", "ruby", "debian-bin", "ruby-rack", "usr/share/rubygems-integration/all/gems/rack-*"),
]


def _apt(*args: str) -> list[str]:
    apt = WORK / "apt"
    return ["apt-get", "-q", "-o", f"Dir::Etc::SourceList={apt / 'sources.list'}",
            "-o", "Dir::Etc::SourceParts=/nonexistent", "-o", f"Dir::State::Lists={apt / 'lists'}",
            "-o", f"Dir::Cache={apt / 'cache'}", *args]


def _apt_lists() -> None:
    apt = WORK / "apt"
    if not (apt / "lists" / "done").exists():
        (apt / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (apt / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (apt / "sources.list").write_text(DEB_LIST)
        subprocess.run(_apt("update"), check=True, capture_output=True)
        (apt / "lists" / "done").touch()


def _debian_tarball(package: str, into: Path) -> Path:
    _apt_lists()
    subprocess.run(_apt("source", "--download-only", package), cwd=into, check=True, capture_output=True)
    origs = sorted(p for p in into.glob("*.orig.tar.*") if ".orig-" not in p.name)
    if not origs:
        raise RuntimeError(f"{package}: no upstream tarball in {sorted(p.name for p in into.iterdir())}")
    return origs[0]


def _debian_binary(package: str, into: Path) -> Path:
    _apt_lists()
    subprocess.run(_apt("download", package), cwd=into, check=True, capture_output=True)
    return next(into.glob("*.deb"))


def _pypi_sdist(spec: str, into: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
                    "-d", str(into), spec], check=True, capture_output=True)
    return next(into.glob("*.tar.gz"))


def _npm_tarball(spec: str, into: Path) -> Path:
    done = subprocess.run(["npm", "pack", "--silent", spec], cwd=into, check=True, capture_output=True, text=True)
    return into / done.stdout.strip().splitlines()[-1]


def fetch(repo: Repo) -> Path:
    """The upstream tree as a one-commit git repository (both tools list files with git)."""
    tree = WORK / repo.name
    if (tree / ".git").exists():
        return tree
    downloads = WORK / "downloads" / repo.name
    downloads.mkdir(parents=True, exist_ok=True)
    get = {"debian": _debian_tarball, "debian-bin": _debian_binary, "npm": _npm_tarball, "pypi": _pypi_sdist}
    archive_path = get[repo.registry](repo.package, downloads)
    staging = Path(tempfile.mkdtemp(dir=WORK))
    if repo.registry == "debian-bin":
        subprocess.run(["dpkg-deb", "-x", str(archive_path), str(staging)], check=True)
        top = next(staging.glob(repo.inside))
    else:
        with tarfile.open(archive_path) as archive:
            archive.extractall(staging, filter="data")
        entries = list(staging.iterdir())
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "-c", "commit.gpgsign=false"]
    subprocess.run(git + ["init", "-q"], cwd=top, check=True)
    subprocess.run(git + ["add", "-A", "-f"], cwd=top, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "upstream"], cwd=top, check=True)
    shutil.move(str(top), tree)
    shutil.rmtree(staging, ignore_errors=True)
    return tree


def load_keys(repo: Repo) -> list[str]:
    lines = (KEYS / f"{repo.name}.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def found(keys: list[str], text: str) -> list[str]:
    return [k for k in keys if re.search(rf"(?<![\w$]){re.escape(k)}(?![\w$])", text)]


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} in {cwd}: {done.stderr[-2000:]}")
    return time.perf_counter() - started, done.stdout


def ours(tree: Path, cache: Path) -> tuple[float, float, str]:
    env = {**os.environ, "GPTOSS_AGENT_CACHE_DIR": str(cache)}
    entry = shutil.which("gptoss-agent")
    cmd = [entry] if entry else [sys.executable, "-m", "gptoss_agent.agent.frontends.cli"]
    cmd += ["map", "--tokens", "1024"]
    shutil.rmtree(cache / "repomap", ignore_errors=True)
    cold, text = timed(cmd, env, tree)
    warm, again = timed(cmd, env, tree)
    assert again == text, "warm map differs from cold"
    return cold, warm, text


def aiders(tree: Path, python: str, script: Path, env: dict) -> tuple[float, float, str]:
    for leftover in tree.glob(".aider.tags.cache*"):
        shutil.rmtree(leftover, ignore_errors=True)
    cold, text = timed([python, str(script), str(tree)], env, tree)
    warm, _ = timed([python, str(script), str(tree)], env, tree)
    return cold, warm, text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", help="repository names to run")
    parser.add_argument("--show", action="store_true", help="print each map and the missed names")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    cache = Path(tempfile.mkdtemp())
    shutil.copytree(canonical_vocab_dir(), cache / "vocab")
    aider = os.environ.get("AIDER_PYTHON")
    aider_env = script = None
    if aider:
        tiktoken_cache = Path(tempfile.mkdtemp())
        shutil.copy(canonical_vocab_dir() / "o200k_base.tiktoken",
                    tiktoken_cache / "fb374d419588a4632f3f557e76b4b70aebbca790")
        aider_env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tiktoken_cache), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        script = Path(tempfile.mkdtemp()) / "aider_map.py"
        script.write_text(AIDER_SCRIPT)
    else:
        print("Aider: set AIDER_PYTHON to a venv python with aider-chat 0.86.2 to compare in the same run")
    header = f"{'repository':14} {'language':11} {'keys':>4} {'ours':>6} {'aider':>6}   " \
             f"{'cold s ours/aider':>18} {'warm s ours/aider':>18}"
    print(header)
    totals = {"ours": [0, 0], "aider": [0, 0]}
    times = {"ours": [0.0, 0.0], "aider": [0.0, 0.0]}
    languages: dict[str, list[int]] = {}  # language → [ours found, aider found, keys]
    for repo in REPOS:
        if args.only and repo.name not in args.only:
            continue
        tree = fetch(repo)
        keys = load_keys(repo)
        cold, warm, text = ours(tree, cache)
        hit = found(keys, text)
        totals["ours"][0] += len(hit)
        totals["ours"][1] += len(keys)
        times["ours"][0] += cold
        times["ours"][1] += warm
        a_cell, t_cell, w_cell = "-", f"{cold:6.2f}/-", f"{warm:6.2f}/-"
        a_hit: list[str] = []
        if aider:
            a_cold, a_warm, a_text = aiders(tree, aider, script, aider_env)
            a_hit = found(keys, a_text)
            totals["aider"][0] += len(a_hit)
            totals["aider"][1] += len(keys)
            times["aider"][0] += a_cold
            times["aider"][1] += a_warm
            a_cell = f"{len(a_hit) / len(keys):6.0%}"
            t_cell, w_cell = f"{cold:6.2f}/{a_cold:6.2f}", f"{warm:6.2f}/{a_warm:6.2f}"
        tally = languages.setdefault(repo.language, [0, 0, 0])
        tally[0] += len(hit)
        tally[1] += len(a_hit)
        tally[2] += len(keys)
        print(f"{repo.name:14} {repo.language:11} {len(keys):4} {len(hit) / len(keys):6.0%} {a_cell:>6}   "
              f"{t_cell:>18} {w_cell:>18}", flush=True)
        if args.show:
            print(text)
            print("  missed by ours:", ", ".join(k for k in keys if k not in hit))
            if aider:
                print("  missed by aider:", ", ".join(k for k in keys if k not in a_hit))
    if languages:
        print("per language: " + ", ".join(
            f"{language} {ours_n}/{keys_n} = {ours_n / keys_n:.0%}" + (f" (aider {aider_n / keys_n:.0%})" if aider else "")
            for language, (ours_n, aider_n, keys_n) in languages.items()))
    o_hit, o_all = totals["ours"]
    if o_all:
        line = f"all: ours {o_hit}/{o_all} = {o_hit / o_all:.0%}"
        if aider:
            a_hit_n, a_all = totals["aider"]
            line += f", aider {a_hit_n}/{a_all} = {a_hit_n / a_all:.0%}"
            line += (f"; speed-up over aider (summed wall time): cold {times['aider'][0] / times['ours'][0]:.1f}x,"
                     f" warm {times['aider'][1] / times['ours'][1]:.1f}x")
        print(line)
    shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
