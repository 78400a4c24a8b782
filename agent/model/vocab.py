"""The o200k vocabulary, derived offline from the model's own GGUF file.

openai-harmony and tiktoken both want `o200k_base.tiktoken`, which they would
normally download. A gpt-oss GGUF carries the same vocabulary in its tokenizer
metadata (GPT-2 byte-level strings, ranks = token ids), so we rebuild the file
from it, check it against the canonical SHA-256, and keep it in a cache
directory. Nothing here touches the network.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from gptoss_agent.agent import locations
from gptoss_agent.agent.model.gguf_meta import GGUFError, read_metadata

if TYPE_CHECKING:  # pragma: no cover
    import tiktoken
    from openai_harmony import HarmonyEncoding

O200K_FILENAME = "o200k_base.tiktoken"
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
O200K_RANKS = 199_998  # ordinary (non-special) tokens: ids 0 … 199,997
HARMONY_VOCAB_SIZE = 201_088

# The split pattern of o200k_base (tiktoken_ext.openai_public), needed to build
# the tiktoken encoding without asking tiktoken to fetch anything.
O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])

# The Harmony special tokens at their real ids; every other id from 199,998 up
# to 201,087 is `<|reserved_N|>`.
HARMONY_SPECIALS = {
    199_998: "<|startoftext|>",
    199_999: "<|endoftext|>",
    200_002: "<|return|>",
    200_003: "<|constrain|>",
    200_005: "<|channel|>",
    200_006: "<|start|>",
    200_007: "<|end|>",
    200_008: "<|message|>",
    200_012: "<|call|>",
    200_018: "<|endofprompt|>",
}


class VocabularyError(RuntimeError):
    """The vocabulary is missing, or does not match the canonical o200k file."""


def harmony_special_tokens() -> dict[str, int]:
    """Every special token of the o200k_harmony encoding, name → id."""
    return {HARMONY_SPECIALS.get(i, f"<|reserved_{i}|>"): i for i in range(O200K_RANKS, HARMONY_VOCAB_SIZE)}


def cache_dir() -> Path:
    """Where the derived vocabulary lives (override with GPTOSS_AGENT_CACHE_DIR)."""
    return locations.vocab_dir()


@lru_cache(maxsize=1)
def byte_encoder() -> dict[int, str]:
    """GPT-2's bytes → printable-unicode table, in which GGUF vocabularies spell their tokens."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {byte: chr(code) for byte, code in zip(printable, codes)}


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    return {char: byte for byte, char in byte_encoder().items()}


def token_bytes(byte_level: str) -> bytes:
    """Decode one GPT-2 byte-level token string into the bytes it stands for."""
    decoder = _byte_decoder()
    try:
        return bytes(decoder[ch] for ch in byte_level)
    except KeyError as exc:
        raise VocabularyError(f"token {byte_level!r} is not a byte-level string") from exc


def tiktoken_file_from_tokens(tokens: Sequence[str]) -> bytes:
    """Render the first 199,998 byte-level tokens as a `.tiktoken` file (rank = id)."""
    if len(tokens) < O200K_RANKS:
        raise VocabularyError(f"vocabulary has {len(tokens)} tokens, an o200k vocabulary needs {O200K_RANKS}")
    lines = [base64.b64encode(token_bytes(tok)) + b" " + str(rank).encode() + b"\n"
             for rank, tok in enumerate(tokens[:O200K_RANKS])]
    return b"".join(lines)


def derive_from_gguf(gguf_path: str | Path) -> bytes:
    """Build `o200k_base.tiktoken` from a gpt-oss GGUF's tokenizer metadata."""
    try:
        meta = read_metadata(gguf_path, include={"tokenizer.ggml.tokens"})
        tokens = meta.typed("tokenizer.ggml.tokens", list)
        model = meta.typed("tokenizer.ggml.model", str)
    except GGUFError as exc:  # a hostile or broken file: its keys are checked with their types
        raise VocabularyError(str(exc)) from None
    if not tokens:
        raise VocabularyError(f"{gguf_path}: the GGUF has no tokenizer vocabulary")
    if model != "gpt2":
        raise VocabularyError(f"{gguf_path}: tokenizer is {model!r}, not the o200k BPE")
    if not all(isinstance(token, str) for token in tokens):
        raise VocabularyError(f"{gguf_path}: tokenizer.ggml.tokens holds values that are not strings")
    return tiktoken_file_from_tokens(tokens)


def _verify(data: bytes, origin: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if digest != O200K_SHA256:
        raise VocabularyError(f"{origin}: vocabulary SHA-256 is {digest}, expected the canonical o200k_base {O200K_SHA256}")


def install_vocabulary(data: bytes, origin: str, directory: Path | None = None) -> Path:
    """Verify `data` and write it atomically into the cache; returns the directory."""
    _verify(data, origin)
    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".o200k-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, directory / O200K_FILENAME)
    return directory


def install_vocabulary_file(path: str | Path, directory: Path | None = None) -> Path:
    """Install a canonical `.tiktoken` file (plain or gzipped), e.g. from the bpe-openai wheel."""
    raw = Path(path).read_bytes()
    data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    return install_vocabulary(data, str(path), directory)


def ensure_vocabulary(gguf_candidates: Iterable[str | Path] = (), directory: Path | None = None) -> Path:
    """Return a directory holding the verified vocabulary, deriving it from a GGUF if needed."""
    directory = directory or cache_dir()
    cached = directory / O200K_FILENAME
    if cached.is_file():
        return directory
    tried = []
    for candidate in gguf_candidates:
        try:
            return install_vocabulary(derive_from_gguf(candidate), str(candidate), directory)
        except (VocabularyError, OSError, ValueError) as exc:
            tried.append(str(exc))
    detail = ("; ".join(tried)) if tried else "no gpt-oss GGUF was given to derive it from"
    raise VocabularyError(
        f"the o200k vocabulary is not in {directory} ({detail}). "
        "Point --model at a gpt-oss GGUF once, or run `gptoss-agent model vocab PATH`.")


def load_ranks(directory: Path) -> dict[bytes, int]:
    """Parse a `.tiktoken` file into tiktoken's mergeable ranks."""
    data = (directory / O200K_FILENAME).read_bytes()
    _verify(data, str(directory / O200K_FILENAME))
    ranks = {}
    for line in data.splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    return ranks


def load_tiktoken(directory: Path) -> "tiktoken.Encoding":
    """The o200k_harmony tiktoken encoding built from the verified local file."""
    import tiktoken

    return tiktoken.Encoding(
        name="o200k_harmony",
        pat_str=O200K_PATTERN,
        mergeable_ranks=load_ranks(directory),
        special_tokens=harmony_special_tokens(),
    )


def load_harmony(directory: Path) -> "HarmonyEncoding":
    """openai-harmony's gpt-oss encoding, pointed at the verified local file."""
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(directory)
    from openai_harmony import HarmonyEncodingName, load_harmony_encoding

    return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
