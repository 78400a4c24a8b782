"""Find the gpt-oss GGUF on this machine, offline.

Order: `--model PATH`, then `GPTOSS_AGENT_MODEL`, then the config file, then
the places other tools keep models: our own models folder (where `model pull`
puts it), the Hugging Face hub cache, LM Studio, and Ollama's blob store (whose
`gpt-oss:20b` manifest points at a GGUF blob). Every place looked at is
reported, so a missing model is an error that says exactly where we searched,
and when one place holds several candidates the report says which one was
chosen and why.

Caches are filled by other tools and by downloads, so they are read as
untrusted data: directory links are never followed (25 links to `.` used to
hang every start), only regular files are candidates (a FIFO never blocks us),
the walk is bounded in entries and depth, manifests are size-capped and
type-checked (a malformed one is a one-line note), and every name shown to a
person is escaped. A GGUF that is not gpt-oss is refused with a note unless
the user allows any model.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from gptoss_agent.agent.locations import models_dir
from gptoss_agent.agent.model.gguf_meta import GGUF_MAGIC, GGUFError, open_regular, quantization_name, read_metadata
from gptoss_agent.agent.model.check import NotGptOssError, is_gpt_oss, require_gpt_oss, safe_line

PULL_REPO = "ggml-org/gpt-oss-20b-GGUF"
PULL_FILE = "gpt-oss-20b-mxfp4.gguf"
PULL_COMMAND = "pip install 'gptoss-agent[pull]' && gptoss-agent model pull"
OLLAMA_MODEL = ("gpt-oss", "20b")

MAX_WALK_ENTRIES = 20_000
"""Directory entries looked at per place; a model cache holds a few hundred."""
MAX_WALK_DEPTH = 6
MAX_MANIFEST_BYTES = 1 << 20

# Publishers whose gpt-oss GGUFs are preferred when several are cached, best first.
_PUBLISHERS = ("ggml-org", "openai", "unsloth", "lmstudio-community", "bartowski")
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_GPT_OSS_KEYS = frozenset({"general.architecture", "tokenizer.ggml.model", "tokenizer.ggml.tokens"})


@dataclass(frozen=True)
class Place:
    """One place we looked, the GGUF files found there (best first), and a note."""

    label: str
    path: Path | None
    found: tuple[Path, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class ModelSearch:
    """Everything `model where` reports: the places in order and the chosen file."""

    places: tuple[Place, ...] = field(default_factory=tuple)

    @property
    def chosen(self) -> Path | None:
        for place in self.places:
            if place.found:
                return place.found[0]
        return None

    @property
    def reason(self) -> str | None:
        """Why `chosen` was chosen, in one sentence; None when nothing was found."""
        for place in self.places:
            if place.found:
                why = f"the first place in the search order with a gpt-oss GGUF is {place.label}"
                if len(place.found) > 1:
                    others = len(place.found) - 1
                    why += (f"; of its {len(place.found)} candidates this one is preferred "
                            f"({_preference(place.found[0])}) over {others} other{'s' if others > 1 else ''}")
                return why
        return None

    def describe(self) -> str:
        """A human listing of every place and what was there (names escaped)."""
        lines = []
        for place in self.places:
            where = _shown(place.path) if place.path else "(not set)"
            status = ", ".join(_shown(p) for p in place.found) if place.found else (place.note or "nothing")
            if place.found and place.note:
                status += f" ({place.note})"
            lines.append(f"  {place.label:<22} {where}\n  {'':<22} → {safe_line(status)}")
        return "\n".join(lines)

    def report(self) -> str:
        """What `model where` prints: every place, then the choice and why, or how to get the model."""
        text = self.describe()
        if self.chosen is not None:
            return f"{text}\n\nchosen: {_shown(self.chosen)}\n  because {self.reason}"
        return (f"{text}\n\nno gpt-oss model found yet. To get gpt-oss-20b (about 12 GB; the only command "
                f"that uses the network):\n  {PULL_COMMAND}\nor pass a GGUF you already have: "
                "gptoss-agent --model PATH")


def not_found_line(search: "ModelSearch") -> str:
    """One line for a person: why the model they named was refused, else where to get one."""
    for place in search.places:
        if place.path is not None and place.note and place.label in ("--model", "GPTOSS_AGENT_MODEL", "config: model"):
            return f"{place.label} {_shown(place.path)}: {safe_line(place.note)}"
    return (f"no gpt-oss model found (`gptoss-agent model where` lists the {len(search.places)} places searched); "
            f"get it with `{PULL_COMMAND}` or pass --model PATH")


class ModelNotFoundError(FileNotFoundError):
    """No usable GGUF anywhere; the message names every place and the fetch command."""

    def __init__(self, search: ModelSearch) -> None:
        self.search = search
        super().__init__(
            "no gpt-oss model found. Looked in:\n" + search.describe() +
            f"\nFetch it with `{PULL_COMMAND}` (about 12 GB), or pass --model PATH.")


def is_gguf(path: Path) -> bool:
    """True when `path` is a regular file (links followed) that starts with the GGUF magic."""
    try:
        fd = open_regular(path)
    except (OSError, GGUFError):
        return False
    try:
        return os.read(fd, 4) == GGUF_MAGIC
    except OSError:
        return False
    finally:
        os.close(fd)


def search(explicit: str | None = None, *, config_model: str | None = None,
           env: Mapping[str, str] = os.environ, home: Path | None = None,
           allow_any_model: bool = False) -> ModelSearch:
    """Look in every place, in priority order, touching nothing but the file system.

    A file named explicitly must be gpt-oss with the Harmony vocabulary unless
    `allow_any_model` (the `--allow-any-model` flag); the caches are searched
    for gpt-oss files by name."""
    home = home or Path(env.get("HOME") or Path.home())
    places = [
        _explicit("--model", explicit, allow_any_model),
        _explicit("GPTOSS_AGENT_MODEL", env.get("GPTOSS_AGENT_MODEL"), allow_any_model),
        _explicit("config: model", config_model, allow_any_model),
        _folder("gptoss-agent models", models_dir(env)),
        _huggingface(env, home),
        _folder("LM Studio", home / ".lmstudio" / "models"),
        _folder("LM Studio (old)", home / ".cache" / "lm-studio" / "models"),
        _ollama(env, home),
    ]
    return ModelSearch(tuple(places))


def find_model(explicit: str | None = None, **kwargs) -> Path:
    """The GGUF to load, or ModelNotFoundError naming every place looked at."""
    result = search(explicit, **kwargs)
    if result.chosen is None:
        raise ModelNotFoundError(result)
    return result.chosen


def check_model(path: Path, *, allow_any_model: bool = False) -> None:
    """Raise NotGptOssError (a ModelCheckError) unless `path` is gpt-oss or any model is allowed."""
    if not allow_any_model:
        require_gpt_oss(read_metadata(path, stop_when=_GPT_OSS_KEYS))


# ---------------------------------------------------------------------- places

def _explicit(label: str, value: str | None, allow_any_model: bool) -> Place:
    if not value:
        return Place(label, None, note="not set")
    path = Path(value).expanduser()
    try:
        mode = path.stat().st_mode
    except OSError:
        return Place(label, path, note="no such file")
    if stat.S_ISDIR(mode):
        walk = _Walk(path)
        found = _ranked(walk.ggufs())
        return Place(label, path, found, note=walk.note or ("" if found else "a folder with no gpt-oss GGUF"))
    if not stat.S_ISREG(mode):
        return Place(label, path, note="not a regular file (a FIFO, device or socket is never read)")
    if not is_gguf(path):
        return Place(label, path, note="not a GGUF file")
    if not allow_any_model:
        try:
            require_gpt_oss(read_metadata(path, stop_when=_GPT_OSS_KEYS))
        except NotGptOssError as exc:
            return Place(label, path, note=str(exc).replace(str(path) + " ", "", 1))
        except GGUFError as exc:
            return Place(label, path, note=f"unreadable GGUF ({exc})")
    return Place(label, path, (path,))


def _folder(label: str, folder: Path) -> Place:
    if not folder.is_dir():
        return Place(label, folder, note="folder absent")
    walk = _Walk(folder)
    return Place(label, folder, _ranked(walk.ggufs()), note=walk.note)


def _huggingface(env: Mapping[str, str], home: Path) -> Place:
    hub = Path(env["HF_HUB_CACHE"]) if env.get("HF_HUB_CACHE") else (
        Path(env["HF_HOME"]) / "hub" if env.get("HF_HOME") else home / ".cache" / "huggingface" / "hub")
    if not hub.is_dir():
        return Place("Hugging Face cache", hub, note="folder absent")
    walk = _Walk(hub)
    found: list[Path] = []
    try:
        with os.scandir(hub) as entries:
            repos = sorted(itertools.islice(entries, MAX_WALK_ENTRIES), key=lambda e: e.name)
    except OSError as exc:
        return Place("Hugging Face cache", hub, note=f"unreadable ({exc.strerror})")
    for repo in repos:
        if repo.name.startswith("models--") and "gpt-oss" in repo.name.lower() and _real_dir(repo.path):
            snapshots = os.path.join(repo.path, "snapshots")
            if _real_dir(snapshots):
                found.extend(walk.ggufs(Path(snapshots)))
    return Place("Hugging Face cache", hub, _ranked(found), note=walk.note)


def _ollama(env: Mapping[str, str], home: Path) -> Place:
    root = Path(env["OLLAMA_MODELS"]) if env.get("OLLAMA_MODELS") else home / ".ollama" / "models"
    name, tag = OLLAMA_MODEL
    manifest = root / "manifests" / "registry.ollama.ai" / "library" / name / tag
    if not manifest.exists():
        return Place("Ollama", root, note=f"no {name}:{tag} manifest")
    try:
        layers = _manifest_layers(manifest)
    except ValueError as exc:
        return Place("Ollama", root, note=f"malformed manifest {manifest}: {exc}")
    for layer in layers:
        if layer.get("mediaType") != "application/vnd.ollama.image.model":
            continue
        digest = _DIGEST.fullmatch(layer.get("digest") if isinstance(layer.get("digest"), str) else "")
        if digest is None:
            return Place("Ollama", root, note="manifest's model layer has no valid sha256 digest")
        blob = root / "blobs" / f"sha256-{digest.group(1)}"
        if is_gguf(blob):
            return Place("Ollama", root, (blob,))
        return Place("Ollama", root, note=f"model blob {blob} missing or not GGUF")
    return Place("Ollama", root, note="manifest names no model layer")


def _manifest_layers(manifest: Path) -> list[dict]:
    """The `layers` of an Ollama manifest, read as untrusted JSON; ValueError says what is wrong."""
    try:
        fd = open_regular(manifest)
    except (OSError, GGUFError) as exc:
        raise ValueError(f"cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    with os.fdopen(fd, "rb") as handle:
        raw = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ValueError(f"larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError):
        raise ValueError("not JSON") from None
    layers = data.get("layers") if isinstance(data, dict) else None
    if not isinstance(layers, list):
        raise ValueError("no list of layers")
    return [layer for layer in layers if isinstance(layer, dict)]


# ---------------------------------------------------------------------- walking and ranking

class _Walk:
    """A bounded walk shared by the folders of one place: no directory links, regular files only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries = 0
        self.note = ""

    def ggufs(self, start: Path | None = None) -> list[Path]:
        """gpt-oss GGUFs (by name, first shard of split files only) under `start`."""
        return [p for p in self._files(start or self.root)
                if "gpt-oss" in p.name.lower() and p.name.endswith(".gguf")
                and ("-of-" not in p.name or "-00001-of-" in p.name) and is_gguf(p)]

    def _files(self, top: Path) -> Iterator[Path]:
        stack = [(top, 0)]
        while stack:
            directory, depth = stack.pop()
            try:
                with os.scandir(directory) as entries:  # never more than the budget left, even in a huge folder
                    listed = list(itertools.islice(entries, MAX_WALK_ENTRIES - self.entries + 1))
            except OSError:
                continue
            for entry in sorted(listed, key=lambda e: e.name):
                self.entries += 1
                if self.entries > MAX_WALK_ENTRIES:
                    self.note = f"stopped after {MAX_WALK_ENTRIES} entries"
                    return
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if depth < MAX_WALK_DEPTH:
                            stack.append((Path(entry.path), depth + 1))
                    elif entry.is_file(follow_symlinks=False):
                        yield Path(entry.path)
                    elif entry.is_symlink() and stat.S_ISREG(os.stat(entry.path).st_mode):
                        yield Path(entry.path)  # a file link (the Hugging Face cache is made of them)
                except OSError:
                    continue


def _real_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _ranked(paths: list[Path]) -> tuple[Path, ...]:
    return tuple(sorted(dict.fromkeys(paths), key=_rank))


def _rank(path: Path) -> tuple:
    name = path.name.lower()
    publisher = _publisher(path)
    return ("20b" not in name, _PUBLISHERS.index(publisher) if publisher in _PUBLISHERS else len(_PUBLISHERS),
            "mxfp4" not in name, len(str(path)), str(path))


def _publisher(path: Path) -> str | None:
    for part in path.parts:
        if part.startswith("models--"):
            return part.split("--")[1] if part.count("--") >= 2 else None
    return None


def _preference(path: Path) -> str:
    name = path.name.lower()
    publisher = _publisher(path)
    reasons = ["the 20b model" if "20b" in name else "no 20b candidate"]
    if publisher:
        reasons.append(f"published by {publisher}" + (" (where `model pull` gets it)" if publisher == "ggml-org"
                                                        else ""))
    if "mxfp4" in name:
        reasons.append("MXFP4, gpt-oss's native quantization")
    reasons.append("then the shortest path")
    return ", ".join(reasons)


def _shown(path: Path | str) -> str:
    text = str(path)
    home = os.environ.get("HOME")
    if home and home != "/" and text.startswith(home + os.sep):
        text = "~" + text[len(home):]
    return safe_line(text)


# ---------------------------------------------------------------------- facts

def describe_gguf(path: Path) -> dict[str, object]:
    """The facts `model info` shows, read from the metadata alone (nothing is loaded).

    Every string comes from the file, so each is escaped before a person sees it."""
    meta = read_metadata(path)
    size = path.stat().st_size

    def text(value: object) -> str | None:
        return safe_line(str(value)) if value is not None else None

    experts, used = meta.arch_value("expert_count"), meta.arch_value("expert_used_count")
    return {
        "path": text(path),
        "name": text(meta.values.get("general.name") or path.stem),
        "architecture": text(meta.architecture or meta.values.get("general.architecture")),
        "gpt-oss": "yes" if is_gpt_oss(meta) else "no (refused unless --allow-any-model)",
        "quantization": quantization_name(meta.values.get("general.file_type")),
        "size": f"{size / 2**30:.2f} GiB" if size > 2**30 else f"{size / 2**20:.1f} MiB",
        "context (trained)": text(meta.arch_value("context_length")),
        "layers": text(meta.arch_value("block_count")),
        "experts": text(f"{experts} ({used} active)") if experts else None,
        "sliding window": text(meta.arch_value("attention.sliding_window")),
        "tokenizer": text(f"{meta.values.get('tokenizer.ggml.model')} / {meta.values.get('tokenizer.ggml.pre')}"),
    }
