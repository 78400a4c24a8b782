"""The repo map: the code's definitions, ranked by how much the rest of the code uses them,
rendered as a compact outline that fits a token budget.

Files are parsed with tree-sitter (tools/tags.py) and cached on disk by path,
mtime and size, so a second run on an unchanged repository parses nothing.
Ranking is PageRank over the file graph (file A → file B when A uses a name B
defines), personalised toward the files a task is about. Huge, generated,
minified, binary and vendored files are skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from tools.tags import Definition, FileTags, extract, language_for

CACHE_VERSION = 1
MAX_FILE_BYTES = 1_000_000
VENDORED = ("node_modules/", "vendor/", "third_party/", "third-party/", "dist/", "build/", ".venv/", "venv/",
            "site-packages/", "__pycache__/")


@dataclass
class RepoIndex:
    """Tags per file, plus how many files had to be parsed to get them."""

    files: dict[str, FileTags] = field(default_factory=dict)
    parsed: int = 0
    skipped: list[str] = field(default_factory=list)
    digest: str = ""  # of the cache content: changes exactly when some file's (mtime, size) does


def cache_path(root: Path, env=os.environ) -> Path:
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    if env.get("GPTOSS_AGENT_CACHE_DIR"):
        base = Path(env["GPTOSS_AGENT_CACHE_DIR"])
    else:
        import platformdirs

        base = Path(platformdirs.user_cache_dir("gptoss-agent"))
    return base / "repomap" / f"{key}.json"


def _skip_reason(path: str, size: int) -> str | None:
    if any(part in f"{path}/" for part in VENDORED) or f"/{path}".count("/.") and path.split("/")[0].startswith("."):
        return "vendored or hidden"
    if size > MAX_FILE_BYTES:
        return "huge"
    if path.endswith((".min.js", ".min.css", ".pb.go", "_pb2.py", ".generated.ts")):
        return "generated or minified"
    return None


def _looks_generated(source: bytes) -> bool:
    head = source[:2000]
    if b"\0" in head:
        return True
    lines = source.count(b"\n") + 1
    return (len(source) / lines > 300) or b"@generated" in head or b"DO NOT EDIT" in head


def build_index(root: Path, files: Iterable[str], *, cache_file: Path | None = None,
                on_parse: Callable[[int], None] | None = None) -> RepoIndex:
    """Tags for every supported file, re-parsing only what changed since the cached run.

    `on_parse(n)` is called before `n` changed files are parsed (callers start slow
    work of their own meanwhile).
    """
    cache_file = cache_file or cache_path(root)
    try:
        raw = cache_file.read_text() if cache_file.exists() else ""
        cached = json.loads(raw) if raw else {}
        if cached.get("version") != CACHE_VERSION:
            cached = {}
    except (OSError, json.JSONDecodeError):
        raw, cached = "", {}
    entries: dict = cached.get("files", {})
    index = RepoIndex()
    fresh: dict = {}
    files = list(files)
    stale = [rel for rel in files if language_for(rel) is not None and _changed(root, rel, entries.get(rel))]
    if stale and on_parse is not None:
        on_parse(len(stale))
    parsed_now = _parse_many(root, stale)
    for rel in files:
        if language_for(rel) is None:
            continue
        entry = parsed_now.get(rel) or entries.get(rel)
        if entry is None:
            continue
        if rel in parsed_now and not entry.get("skip"):
            index.parsed += 1
        if entry.get("skip"):
            index.skipped.append(f"{rel} ({entry['skip']})")
        fresh[rel] = entry
        if not entry.get("skip"):
            index.files[rel] = FileTags(tuple(Definition(*d) for d in entry["defs"]), tuple(entry["refs"]))
    if parsed_now or set(fresh) != set(entries):
        raw = json.dumps({"version": CACHE_VERSION, "files": fresh}, separators=(",", ":"))
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(raw)
        tmp.replace(cache_file)
    index.digest = hashlib.sha256(raw.encode()).hexdigest()
    return index


def _changed(root: Path, rel: str, entry: dict | None) -> bool:
    try:
        stat = (root / rel).stat()
    except OSError:
        return False
    return entry is None or entry["stamp"] != [stat.st_mtime_ns, stat.st_size]


def _parse_one(root: Path, rel: str) -> tuple[str, dict | None]:
    try:
        stat = (root / rel).stat()
        stamp = [stat.st_mtime_ns, stat.st_size]
        reason = _skip_reason(rel, stat.st_size)
        if reason:
            return rel, {"stamp": stamp, "skip": reason}
        source = (root / rel).read_bytes()
    except OSError:
        return rel, None
    if _looks_generated(source):
        return rel, {"stamp": stamp, "skip": "generated, minified or binary"}
    tags = extract(rel, source)
    return rel, {"stamp": stamp, "defs": [[d.name, d.kind, d.line, d.signature] for d in tags.definitions],
                 "refs": sorted(set(tags.references))}


def _parse_chunk(root: Path, rels: list[str]) -> list[tuple[str, dict | None]]:
    return [_parse_one(root, rel) for rel in rels]


def _parse_many(root: Path, rels: list[str]) -> dict[str, dict]:
    """Parse changed files; a cold run on a big tree uses every core."""
    workers = min(len(os.sched_getaffinity(0)), 8) if hasattr(os, "sched_getaffinity") else 1
    if len(rels) < 200 or workers < 2:
        results = _parse_chunk(root, rels)
    else:
        from concurrent.futures import ProcessPoolExecutor

        chunks = [rels[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(workers) as pool:
            results = [item for part in pool.map(_parse_chunk, [root] * workers, chunks) for item in part]
    return {rel: entry for rel, entry in results if entry is not None}


def rank_files(index: RepoIndex, focus: Iterable[str] = (), *, damping: float = 0.85,
               iterations: int = 40) -> dict[str, float]:
    """PageRank over 'uses a name defined in' edges, personalised toward `focus` files."""
    definers: dict[str, set[str]] = defaultdict(set)
    for path, tags in index.files.items():
        for definition in tags.definitions:
            definers[definition.name].add(path)
    edges: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for path, tags in index.files.items():
        for name in tags.references:
            targets = definers.get(name)
            if not targets or len(targets) > 20:  # names defined everywhere (run, get) say little
                continue
            for target in targets:
                if target != path:
                    edges[path][target] += 1.0 / len(targets)
    nodes = list(index.files)
    if not nodes:
        return {}
    focus = [f for f in focus if f in index.files]
    personal = {n: (1.0 if n in focus else 0.0) for n in nodes} if focus else {n: 1.0 for n in nodes}
    total = sum(personal.values())
    personal = {n: v / total for n, v in personal.items()}
    rank = dict(personal)
    out_weight = {n: sum(edges[n].values()) if n in edges else 0.0 for n in nodes}
    for _ in range(iterations):
        dangling = sum(rank[n] for n in nodes if out_weight[n] == 0)
        new = {n: (1 - damping) * personal[n] + damping * dangling * personal[n] for n in nodes}
        for source, targets in edges.items():
            if not out_weight[source]:
                continue
            share = damping * rank[source] / out_weight[source]
            for target, weight in targets.items():
                new[target] += share * weight
        rank = new
    return rank


def ranked_definitions(index: RepoIndex, focus: Iterable[str] = ()) -> list[tuple[str, Definition, float]]:
    """(file, definition, score), most important first.

    A definition scores by the rank of the files that use its name, shared among
    the files defining that name (a method called `append` in forty files says
    little about any one of them), plus a share of its own file's rank.
    """
    rank = rank_files(index, focus)
    definers: dict[str, int] = defaultdict(int)
    for tags in index.files.values():
        for name in {d.name for d in tags.definitions}:
            definers[name] += 1
    use: dict[str, float] = defaultdict(float)
    for path, tags in index.files.items():
        weight = rank[path]
        for name in tags.references:
            if name in definers:
                use[name] += weight
    scored = []
    for path, tags in index.files.items():
        for definition in tags.definitions:
            shared = use.get(definition.name, 0.0) / definers[definition.name] ** 2
            bonus = 1.0 if definition.kind in ("class", "interface", "struct", "trait", "type", "module") else 0.5
            scored.append((path, definition, (rank[path] * 0.3 + shared) * bonus))
    scored.sort(key=lambda item: (-item[2], item[0], item[1].line))
    return scored


def render(selected: list[tuple[str, Definition, float]]) -> str:
    """Group the chosen definitions by file (in rank order) as an outline with line numbers."""
    by_file: dict[str, list[Definition]] = {}
    for path, definition, _ in selected:
        by_file.setdefault(path, []).append(definition)
    lines: list[str] = []
    for path, definitions in by_file.items():
        lines.append(f"{path}:")
        for definition in sorted(definitions, key=lambda d: d.line):
            indent = "    " if definition.kind == "method" else "  "
            lines.append(f"{indent}{definition.line}: {definition.signature}")
    return "\n".join(lines)


def repo_map(index: RepoIndex, budget: int, count_tokens: Callable[[str], int], focus: Iterable[str] = ()) -> str:
    """The largest outline of top-ranked definitions whose token count is within `budget`."""
    if budget <= 0:
        return ""
    ranked = ranked_definitions(index, focus)
    low, high, best = 0, len(ranked), ""
    while low <= high:
        middle = (low + high) // 2
        text = render(ranked[:middle])
        if count_tokens(text) <= budget:
            best, low = text, middle + 1
        else:
            high = middle - 1
    return best


def find_symbol(index: RepoIndex, root: Path, name: str, max_uses: int = 30) -> str:
    """Where `name` is defined (with signature) and which files use it."""
    defined = [(p, d) for p, tags in index.files.items() for d in tags.definitions
               if d.name == name or d.name.endswith("::" + name) or d.name.endswith("." + name)]
    users = sorted(p for p, tags in index.files.items() if name in tags.references)
    if not defined and not users:
        return f"no definition or use of {name!r} found in the parsed source files"
    lines = [f"{p}:{d.line}: {d.signature}" for p, d in defined] or [f"no definition of {name!r} found"]
    if users:
        shown = users[:max_uses]
        lines.append(f"used in {len(users)} file(s): " + ", ".join(shown) + (" …" if len(users) > max_uses else ""))
    return "\n".join(lines)


@dataclass
class MapResult:
    text: str
    files: int
    parsed: int
    from_cache: bool


def build_map(root: Path, files: list[str], budget: int, counter_factory: Callable[[], Callable[[str], int]],
              focus: Iterable[str] = (), *, cache_file: Path | None = None) -> MapResult:
    """The repo map for `budget` tokens; an unchanged repository reuses the last rendering outright.

    `counter_factory` builds the token counter only when a map must be rendered,
    so a warm run never pays for loading the tokenizer.
    """
    cache_file = cache_file or cache_path(root)
    counter: list[Callable[[str], int]] = []

    def load_counter() -> None:
        try:
            counter.append(counter_factory())
        except Exception:  # raised again, in the caller's thread, below
            pass

    loader = threading.Thread(target=load_counter, daemon=True)
    # Loading the tokenizer overlaps the parsing when files changed; otherwise it may not be needed at all.
    index = build_index(root, files, cache_file=cache_file, on_parse=lambda n: loader.start())
    focus = sorted(set(focus))
    key = hashlib.sha256(json.dumps([index.digest, budget, focus]).encode()).hexdigest()
    maps_file = cache_file.with_suffix(".maps.json")
    try:
        maps = json.loads(maps_file.read_text()) if maps_file.exists() else {}
    except (OSError, json.JSONDecodeError):
        maps = {}
    if index.parsed == 0 and key in maps:
        return MapResult(maps[key], len(index.files), 0, True)
    if loader.is_alive() or counter:
        loader.join()
    count_tokens = counter[0] if counter else counter_factory()
    text = repo_map(index, budget, count_tokens, focus)
    maps = {key: text, **{k: v for k, v in list(maps.items())[:15]}}
    maps_file.write_text(json.dumps(maps))
    return MapResult(text, len(index.files), index.parsed, False)


def mentioned_files(text: str, files: Iterable[str]) -> list[str]:
    """Repository files a task names, by path or by file name."""
    found = []
    for path in files:
        name = path.rsplit("/", 1)[-1]
        if path in text or (len(name) > 3 and name in text):
            found.append(path)
    return found
