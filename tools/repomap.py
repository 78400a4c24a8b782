"""The repo map: the code's definitions, ranked by how much the rest of the code uses them,
rendered as a compact outline that fits a token budget.

Files are read through `tools.paths.Workspace` (no link out of the
repository, regular files only, credentials refused) and parsed with
tree-sitter (tools/tags.py) with work linear in the file's size: code nested
deeper than real code is skipped and noted at once, and a CPU-time budget per
file catches anything else, so no file can stall start-up. Results are
cached on disk keyed by each file's content hash, in a folder only the user
can read (0700, files 0600, written without following links); a cache that
is foreign, shared, malformed or from another project is ignored, and a
failed cache write is a warning, never an error. Signatures whose defaults
look like secrets (`password="…"`) are elided before they are stored or shown.

Ranking (tools/repomap_rank.py) finds the project's public API: PageRank over
the file graph (file A → file B when A uses a name B defines), personalised
toward the task's files and the names its text mentions, then library code
over tests and examples, exports over internals, builtin-shadowing names
discounted; a Python import credits the very definition it names
(tools/repomap_imports.py). `--focus` files and their direct neighbours always come first.
Without a focus the map opens with what the packages' entry files re-export by name
(`exports: of map …`, names only, in at most EXPORTS_SHARE of the budget): a project that exports
hundreds of names can name its declared surface where its declarations would not fit. A name is
never both there and in the outline, and a type the head names appears in the outline only to carry
its members.
Rendering is tools/repomap_render.py. Huge, generated, minified, binary and
vendored files are skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import re
import threading
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable

from gptoss_agent.agent import locations
from gptoss_agent.tools.paths import PathRefused, TooLarge, Workspace, private_dir, read_private_file, write_new_file
from gptoss_agent.tools.repomap_imports import PythonImports
from gptoss_agent.tools.repomap_rank import (TYPE_KINDS, declared_exports, focus_first, ranked_definitions, split_entries,
                                             with_member_names)
from gptoss_agent.tools.repomap_render import EXPORTS_LINE, render, render_exports, shown
from gptoss_agent.tools.tags import Definition, FileTags, Unmappable, extract, language_for

MAP_VERSION = 8  # of ranking and rendering: a map cached by an older one is not served (8: star names bounded, types dropped only when an exports line names them; 7: bounded import resolution, exports named once; 6: Python imports resolved; 5: entry files' exports line; 4: bare calls credit functions; 3: no Ruby namespace headers; 2: members by name)
CACHE_VERSION = 9  # 9: Ruby `private %i[…]`; 8: module names over 200 characters not recorded; 7: Python `from M import N` with its module, decorators; 6: calls through an object marked; 5: Go methods scoped by their receiver's type; 4: C/C++ read without macro-only lines, C++ qualified calls, Ruby autoloads
MAX_FILE_BYTES = 1_000_000
EXPORTS_SHARE = 0.25  # at most this share of a map's budget names what the entry files declare (1/8 showed too few)
MAX_CACHE_BYTES = 256 << 20
# CPU seconds one file may take to parse and query: (base, per MB). The work is linear by construction
# (tools/tags.py), so this is a safety net, set well above what a 1 MB file costs on a loaded machine.
PARSE_BUDGET = (2.0, 8.0)
MAP_PARSE_BUDGET_S = 30.0  # seconds for all the files one build parses (tools/repomap.py _parse_many)
VENDORED = ("node_modules/", "vendor/", "third_party/", "third-party/", "dist/", "build/", ".venv/", "venv/",
            "site-packages/", "__pycache__/")
log = logging.getLogger("gptoss_agent.repomap")


@dataclass
class RepoIndex:
    """Tags per file, plus how many files had to be parsed to get them."""

    files: dict[str, FileTags] = field(default_factory=dict)
    parsed: int = 0
    skipped: list[str] = field(default_factory=list)
    digest: str = ""  # of every mapped file's content hash: changes exactly when some file's content does
    warnings: list[str] = field(default_factory=list)


def cache_path(root: Path, env=os.environ) -> Path:
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return locations.repomap_cache_dir(env) / f"{key}.json"


def _skip_reason(path: str) -> str | None:
    if any(part in f"{path}/" for part in VENDORED) or f"/{path}".count("/.") and path.split("/")[0].startswith("."):
        return "vendored or hidden"
    if path.endswith((".min.js", ".min.css", ".pb.go", "_pb2.py", ".generated.ts")):
        return "generated or minified"
    return None


def _looks_generated(source: bytes) -> bool:
    head = source[:2000]
    if b"\0" in head:
        return True
    lines = source.count(b"\n") + 1
    return (len(source) / lines > 300) or b"@generated" in head or b"DO NOT EDIT" in head


_SECRET_DEFAULT = re.compile(
    r"""(?ix)
    (\b[\w.-]*(?:pass(?:word|wd|phrase)?|pwd|secret|token|api_?key|access_?key|private_?key|auth|credential|salt)
     [\w-]*['"]?)                              # the name (a parameter, a key in a literal)
    (\s*(?::\s*[^=,)]*?)?\s*(?:=|:)\s*)          # an annotation, then '=' or ':'
    ("(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?|[^\s,)]+)  # the value
    """)


def elide_secret_defaults(signature: str) -> str:
    """`def connect(password="hunter2")` → `def connect(password=…)`: the map and its cache never hold them."""
    return _SECRET_DEFAULT.sub(lambda m: m.group(1) + m.group(2) + "…", signature)


def build_index(root: Path, files: Iterable[str], *, cache_file: Path | None = None,
                on_parse: Callable[[int], None] | None = None) -> RepoIndex:
    """Tags for every supported file, re-parsing only files whose content changed since the cached run.

    `on_parse(n)` is called before `n` changed files are parsed (callers start slow
    work of their own meanwhile).
    """
    cache_file = cache_file or cache_path(root)
    index = RepoIndex()
    real_root = os.path.realpath(root)
    entries = _load_entries(cache_file, real_root)
    fresh: dict[str, dict] = {}
    stale: list[tuple[str, bytes, str]] = []
    with Workspace(root) as space:
        for rel in files:
            if language_for(rel) is None:
                continue
            entry = _read_for_index(space, rel, entries.get(rel))
            if entry is None:
                continue
            if isinstance(entry, tuple):
                stale.append(entry)
            else:
                fresh[rel] = entry
    if stale and on_parse is not None:
        on_parse(len(stale))
    for rel, entry in _parse_many(stale).items():
        fresh[rel] = entry
        if not entry.get("skip"):
            index.parsed += 1
    for rel in sorted(fresh):
        entry = fresh[rel]
        if entry.get("skip"):
            index.skipped.append(f"{rel} ({entry['skip']})")
        else:
            index.files[rel] = FileTags(tuple(Definition(*d) for d in entry["defs"]), tuple(entry["refs"]))
    index.digest = hashlib.sha256(json.dumps(sorted((rel, e["hash"]) for rel, e in fresh.items())).encode()
                                  ).hexdigest()
    if stale or set(fresh) != set(entries):
        raw = json.dumps({"version": CACHE_VERSION, "root": real_root, "files": fresh}, separators=(",", ":"))
        _save(cache_file, raw.encode(), index.warnings)
    return index


def _read_for_index(space: Workspace, rel: str, cached: dict | None) -> dict | tuple[str, bytes, str] | None:
    """The cached entry when the content is unchanged, a skip entry, or (rel, source, hash) to parse."""
    reason = _skip_reason(rel)
    if reason:
        return {"hash": "-", "skip": reason}
    try:
        source, _ = space.read(rel, max_bytes=MAX_FILE_BYTES)
    except TooLarge:
        return {"hash": "huge", "skip": "huge"}
    except (OSError, PathRefused) as exc:  # gone, a link out, a FIFO, a secret: not mapped, and said why
        return None if isinstance(exc, FileNotFoundError) else {"hash": "refused", "skip": _short(exc)}
    digest = hashlib.blake2b(source, digest_size=16).hexdigest()
    if cached is not None and cached["hash"] == digest:
        return cached
    if _looks_generated(source):
        return {"hash": digest, "skip": "generated, minified or binary"}
    return rel, source, digest


def _short(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[-1][:120] if isinstance(exc, PathRefused) else type(exc).__name__


def _load_entries(cache_file: Path, real_root: str) -> dict[str, dict]:
    """The cached entries that are well-formed and belong to this root; anything else is dropped."""
    raw = read_private_file(cache_file, max_bytes=MAX_CACHE_BYTES)
    if raw is None:
        return {}
    try:
        cached = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(cached, dict) or cached.get("version") != CACHE_VERSION or cached.get("root") != real_root:
        return {}
    files = cached.get("files")
    if not isinstance(files, dict):
        return {}
    return {rel: entry for rel, entry in files.items() if isinstance(rel, str) and _valid_entry(entry)}


def _valid_entry(entry: object) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
        return False
    if "skip" in entry:
        return isinstance(entry["skip"], str)
    defs, refs = entry.get("defs"), entry.get("refs")
    return (isinstance(defs, list) and isinstance(refs, list) and all(isinstance(r, str) for r in refs)
            and all(isinstance(d, list) and len(d) == 7 and isinstance(d[0], str) and isinstance(d[1], str)
                    and isinstance(d[2], int) and isinstance(d[3], str) and isinstance(d[4], str)
                    and isinstance(d[5], int) and isinstance(d[6], bool) for d in defs))


def _save(path: Path, data: bytes, warnings: list[str]) -> None:
    """Write a cache file privately; a failure (disk full, read-only, a planted link) only warns."""
    try:
        private_dir(path.parent)
        write_new_file(path, data, mode=0o600)
    except (OSError, PathRefused) as exc:
        message = f"repo map cache not saved ({exc}); the map still works and is rebuilt next time"
        warnings.append(message)
        log.warning(message)


def parse_budget(source: bytes) -> float:
    """CPU seconds this file may take to parse and query."""
    base, per_mb = PARSE_BUDGET
    return base + per_mb * len(source) / 1_000_000


OVER_BUDGET = "over the map's total parse time budget; not mapped"


def _parse_one(rel: str, source: bytes, digest: str, deadline: float | None = None) -> tuple[str, dict]:
    budget = parse_budget(source)
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0.05:
            # hash "budget", never the content's: the next build parses this file again (its budget is fresh)
            return rel, {"hash": "budget", "skip": OVER_BUDGET}
        budget = min(budget, left)
    try:
        tags = extract(rel, source, budget_s=budget)
    except Unmappable as exc:
        return rel, {"hash": digest, "skip": f"{exc}; not mapped"}
    if tags is None:
        return rel, {"hash": digest, "skip": "unsupported"}
    return rel, {"hash": digest,
                 "defs": [[d.name, d.kind, d.line, elide_secret_defaults(d.signature), elide_secret_defaults(d.scope),
                           d.scope_line, d.exported] for d in tags.definitions],
                 "refs": sorted(set(tags.references))}


def _parse_chunk(items: list[tuple[str, bytes, str]], deadline: float | None = None) -> list[tuple[str, dict]]:
    return [_parse_one(*item, deadline=deadline) for item in items]


def _parse_many(items: list[tuple[str, bytes, str]], budget_s: float | None = None) -> dict[str, dict]:
    """Parse changed files; a cold run on a big tree uses every core.

    The whole build has MAP_PARSE_BUDGET_S (wall clock, shared by the workers): the per-file budget bounds one
    file, this bounds a repository of many slow files (8 files of 880 KB took 12 s; 1 GB would take ~25 min).
    Files left when it is spent are named as not mapped, and parsed by a later build.
    """
    budget_s = MAP_PARSE_BUDGET_S if budget_s is None else budget_s
    deadline = time.monotonic() + budget_s
    workers = min(len(os.sched_getaffinity(0)), 8) if hasattr(os, "sched_getaffinity") else 1
    if len(items) < 200 or workers < 2:
        results = _parse_chunk(items, deadline)
    else:
        from concurrent.futures import ProcessPoolExecutor

        chunks = [items[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(workers) as pool:
            results = [item for part in pool.map(_parse_chunk, chunks, [deadline] * len(chunks)) for item in part]
    return dict(results)


def repo_map(index: RepoIndex, budget: int, count_tokens: Callable[[str], int], focus: Iterable[str] = (),
             mentioned: Iterable[str] = ()) -> str:
    """The largest outline of top-ranked definitions whose token count is within `budget`; the focused
    files and their direct neighbours come first."""
    if budget <= 0:
        return ""
    focus = list(focus)
    imports = PythonImports(index)  # resolved once, for the ranking and the exports line
    ranked = ranked_definitions(index, focus, mentioned, imports)
    entries = focus_first(with_member_names(ranked), index, focus)
    if focus:  # a map for a task opens on the task's own code
        return _largest_outline(entries, budget, count_tokens)
    # the entry files' declared names first, in at most EXPORTS_SHARE of the budget; those the outline
    # shows anyway are dropped, and the outline gets the rest, less the bare declarations of the types the
    # head names
    exports = declared_exports(index, ranked, imports)
    if not exports:  # nothing declared: the outline has the whole budget, searched once
        return _largest_outline(entries, budget, count_tokens)
    outline = _largest_outline(entries, budget - int(budget * EXPORTS_SHARE), count_tokens)
    exports = _not_shown_in(outline, exports)
    head = _largest_prefix(exports, int(budget * EXPORTS_SHARE), count_tokens, render_exports)
    if not head:
        return _largest_outline(entries, budget, count_tokens)
    # a type the head names costs two tokens there and a dozen as a bare declaration in the outline (its
    # file and line): the outline shows it only to put members under it
    listed = _listed(head)
    named = {name for _, name in exports if shown(name) in listed}
    entries = list(islice((entry for entry in entries
                           if entry[3] or entry[1].kind not in TYPE_KINDS or entry[1].name not in named),
                          2 * budget))  # no longer prefix can fit (_largest_prefix)
    outline = _largest_outline(entries, budget - count_tokens(head) - 1, count_tokens)
    for _ in range(3):  # the outline grew into the room the head left: names it now shows leave the head
        kept = _not_shown_in(outline, exports)
        if len(kept) == len(exports):
            break
        exports = kept
        head = _largest_prefix(exports, int(budget * EXPORTS_SHARE), count_tokens, render_exports)
        outline = _largest_outline(entries, budget - (count_tokens(head) + 1 if head else 0), count_tokens)
    if not head:
        return outline
    return f"{head}\n{outline}" if outline else head


def _listed(head: str) -> set[str]:
    """The names on the head's `exports:` lines (not the words of its file names)."""
    return {word for line in head.splitlines() if line.startswith(EXPORTS_LINE) for word in line.split()[1:]}


def _not_shown_in(outline: str, exports: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The exports whose name the outline does not show, compared as the outline shows names: escaped
    (a name holding a zero-width or bidi character is written with a visible escape)."""
    words = set(re.findall(r"\w+", outline))

    def seen(written: str) -> bool:
        if re.fullmatch(r"\w+", written):
            return written in words
        return re.search(rf"(?<!\w){re.escape(written)}(?!\w)", outline) is not None

    return [(path, name) for path, name in exports if not seen(shown(name))]


def _largest_outline(entries, budget: int, count_tokens: Callable[[str], int]) -> str:
    return _largest_prefix(entries, budget, count_tokens, lambda part: render(*split_entries(part)))


def _largest_prefix(items: list, budget: int, count_tokens: Callable[[str], int], draw: Callable[[list], str]
                    ) -> str:
    """The text of the longest prefix of `items` whose token count is within `budget`."""
    # every item shown costs at least a token, and each definition has at most two entries (in full, by
    # name): a longer prefix never fits, and rendering one (tens of thousands of entries) only costs time
    low, high, best = 0, min(len(items), 2 * budget), ""
    while low <= high:
        middle = (low + high) // 2
        text = draw(items[:middle])
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
    warnings: list[str] = field(default_factory=list)
    not_mapped: list[str] = field(default_factory=list)  # "name (why)": too deep or over the time budget


def _not_mapped(index) -> list[str]:
    """The files not mapped, and why: file names are the repository's, one escaped line each."""
    return [shown(s) for s in index.skipped if s.endswith("; not mapped)")]


def _load_maps(path: Path) -> dict[str, str]:
    raw = read_private_file(path, max_bytes=MAX_CACHE_BYTES)
    try:
        maps = json.loads(raw) if raw else {}
    except (ValueError, RecursionError):
        return {}
    if not isinstance(maps, dict):
        return {}
    return {k: v for k, v in maps.items() if isinstance(k, str) and isinstance(v, str)}


def build_map(root: Path, files: list[str], budget: int, counter_factory: Callable[[], Callable[[str], int]],
              focus: Iterable[str] = (), *, cache_file: Path | None = None, mentioned: Iterable[str] = ()
              ) -> MapResult:
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
    focus = focus_paths(root, focus, files)
    mentioned = sorted(set(mentioned))
    key = hashlib.sha256(json.dumps([MAP_VERSION, index.digest, budget, focus, mentioned]).encode()).hexdigest()
    maps_file = cache_file.with_suffix(".maps.json")
    maps = _load_maps(maps_file)
    if index.parsed == 0 and key in maps:
        return MapResult(maps[key], len(index.files), 0, True, index.warnings, _not_mapped(index))
    if loader.is_alive() or counter:
        loader.join()
    count_tokens = counter[0] if counter else counter_factory()
    text = repo_map(index, budget, count_tokens, focus, mentioned)
    maps = {key: text, **{k: v for k, v in list(maps.items())[:15]}}
    if index.warnings:  # the index could not be saved: the rendered map would not be reused either
        return MapResult(text, len(index.files), index.parsed, False, index.warnings, _not_mapped(index))
    _save(maps_file, json.dumps(maps).encode(), index.warnings)
    return MapResult(text, len(index.files), index.parsed, False, index.warnings, _not_mapped(index))


def focus_paths(root: Path, focus: Iterable[str], files: Iterable[str]) -> list[str]:
    """Focus entries as repository paths, in the order given: `./a.py`, `/abs/repo/a.py` and `a.py` are one
    file, and a folder stands for the files under it."""
    files = list(files)
    known = set(files)
    real_root = os.path.realpath(root)
    found: list[str] = []
    for entry in focus:
        path = entry
        if os.path.isabs(path):
            path = os.path.relpath(os.path.realpath(path), real_root)
        path = os.path.normpath(path).replace(os.sep, "/")
        if path.startswith("../") or path == "..":
            continue
        if path in known:
            found.append(path)
        else:
            prefix = "" if path == "." else path.rstrip("/") + "/"
            found.extend(f for f in files if f.startswith(prefix))
    return list(dict.fromkeys(found))


def mentioned_files(text: str, files: Iterable[str]) -> list[str]:
    """Repository files a task names, by path or by file name."""
    found = []
    for path in files:
        name = path.rsplit("/", 1)[-1]
        if path in text or (len(name) > 3 and name in text):
            found.append(path)
    return found
