"""Find the gpt-oss GGUF on this machine, offline.

Order: `--model PATH`, then `GPTOSS_AGENT_MODEL`, then the config file, then
the places other tools keep models: our own models folder (where `model pull`
puts it), the Hugging Face hub cache, LM Studio, and Ollama's blob store (whose
`gpt-oss:20b` manifest points at a GGUF blob). Every place looked at is
reported, so a missing model is an error that says exactly where we searched.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from agent.gguf_meta import GGUF_MAGIC, quantization_name, read_metadata

PULL_REPO = "ggml-org/gpt-oss-20b-GGUF"
PULL_FILE = "gpt-oss-20b-mxfp4.gguf"
PULL_COMMAND = "pip install 'gptoss-agent[pull]' && gptoss-agent model pull"
OLLAMA_MODEL = ("gpt-oss", "20b")


@dataclass(frozen=True)
class Place:
    """One place we looked, and the GGUF files found there."""

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

    def describe(self) -> str:
        """A human listing of every place and what was there."""
        lines = []
        for place in self.places:
            where = str(place.path) if place.path else "(not set)"
            status = ", ".join(str(p) for p in place.found) if place.found else (place.note or "nothing")
            lines.append(f"  {place.label:<22} {where}\n  {'':<22} → {status}")
        return "\n".join(lines)


class ModelNotFoundError(FileNotFoundError):
    """No usable GGUF anywhere; the message names every place and the fetch command."""

    def __init__(self, search: ModelSearch) -> None:
        self.search = search
        super().__init__(
            "no gpt-oss model found. Looked in:\n" + search.describe() +
            f"\nFetch it with `{PULL_COMMAND}` (about 12 GB), or pass --model PATH.")


def models_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Our own models folder, where `model pull` saves the GGUF."""
    override = env.get("GPTOSS_AGENT_DATA_DIR")
    if override:
        return Path(override) / "models"
    import platformdirs

    return Path(platformdirs.user_data_dir("gptoss-agent")) / "models"


def is_gguf(path: Path) -> bool:
    """True when the file starts with the GGUF magic (a cheap check, no parsing)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == GGUF_MAGIC
    except OSError:
        return False


def search(explicit: str | None = None, *, config_model: str | None = None,
           env: Mapping[str, str] = os.environ, home: Path | None = None) -> ModelSearch:
    """Look in every place, in priority order, touching nothing but the file system."""
    home = home or Path(env.get("HOME") or Path.home())
    places = [
        _explicit("--model", explicit),
        _explicit("GPTOSS_AGENT_MODEL", env.get("GPTOSS_AGENT_MODEL")),
        _explicit("config: model", config_model),
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


def _explicit(label: str, value: str | None) -> Place:
    if not value:
        return Place(label, None, note="not set")
    path = Path(value).expanduser()
    if path.is_dir():
        found = _ggufs_in(path)
        return Place(label, path, found, note="" if found else "a folder with no gpt-oss GGUF")
    if not path.exists():
        return Place(label, path, note="no such file")
    if not is_gguf(path):
        return Place(label, path, note="not a GGUF file")
    return Place(label, path, (path,))


def _folder(label: str, folder: Path) -> Place:
    if not folder.is_dir():
        return Place(label, folder, note="folder absent")
    return Place(label, folder, _ggufs_in(folder))


def _ggufs_in(folder: Path) -> tuple[Path, ...]:
    """gpt-oss GGUFs under `folder`, the 20b before others, the first shard of split files only."""
    hits = [p for p in _walk(folder) if "gpt-oss" in p.name.lower() and p.name.endswith(".gguf")
            and ("-of-" not in p.name or "-00001-of-" in p.name)]
    hits.sort(key=lambda p: ("20b" not in p.name.lower(), len(str(p)), str(p)))
    return tuple(hits)


def _walk(folder: Path, depth: int = 6) -> Iterable[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.is_dir() and depth > 0:
            yield from _walk(Path(entry.path), depth - 1)
        elif entry.is_file():
            yield Path(entry.path)


def _huggingface(env: Mapping[str, str], home: Path) -> Place:
    hub = Path(env["HF_HUB_CACHE"]) if env.get("HF_HUB_CACHE") else (
        Path(env["HF_HOME"]) / "hub" if env.get("HF_HOME") else home / ".cache" / "huggingface" / "hub")
    if not hub.is_dir():
        return Place("Hugging Face cache", hub, note="folder absent")
    found: list[Path] = []
    for repo in sorted(hub.glob("models--*")):
        if "gpt-oss" in repo.name.lower():
            found.extend(p for p in _ggufs_in(repo / "snapshots") if p.exists())
    return Place("Hugging Face cache", hub, tuple(found))


def _ollama(env: Mapping[str, str], home: Path) -> Place:
    root = Path(env["OLLAMA_MODELS"]) if env.get("OLLAMA_MODELS") else home / ".ollama" / "models"
    name, tag = OLLAMA_MODEL
    manifest = root / "manifests" / "registry.ollama.ai" / "library" / name / tag
    if not manifest.is_file():
        return Place("Ollama", root, note=f"no {name}:{tag} manifest")
    try:
        layers = json.loads(manifest.read_text()).get("layers", [])
    except (OSError, json.JSONDecodeError):
        return Place("Ollama", root, note=f"unreadable manifest {manifest}")
    for layer in layers:
        if layer.get("mediaType") == "application/vnd.ollama.image.model":
            blob = root / "blobs" / layer.get("digest", "").replace(":", "-")
            if is_gguf(blob):
                return Place("Ollama", root, (blob,))
            return Place("Ollama", root, note=f"model blob {blob} missing or not GGUF")
    return Place("Ollama", root, note="manifest names no model layer")


def describe_gguf(path: Path) -> dict[str, object]:
    """The facts `model info` shows, read from the metadata alone (nothing is loaded)."""
    meta = read_metadata(path)
    size = path.stat().st_size
    return {
        "path": str(path),
        "name": meta.values.get("general.name") or path.stem,
        "architecture": meta.architecture,
        "quantization": quantization_name(meta.values.get("general.file_type")),
        "size": f"{size / 2**30:.2f} GiB" if size > 2**30 else f"{size / 2**20:.1f} MiB",
        "context (trained)": meta.arch_value("context_length"),
        "layers": meta.arch_value("block_count"),
        "experts": f"{meta.arch_value('expert_count')} ({meta.arch_value('expert_used_count')} active)"
                   if meta.arch_value("expert_count") else None,
        "sliding window": meta.arch_value("attention.sliding_window"),
        "tokenizer": f"{meta.values.get('tokenizer.ggml.model')} / {meta.values.get('tokenizer.ggml.pre')}",
    }
