"""Read the key-value metadata of a GGUF file without loading the model.

Model discovery (`model where`, the status bar) and the offline vocabulary both
need a GGUF's metadata long before llama.cpp is imported; this reader keeps that
cheap: it maps the file and stops at the end of the metadata section, never
touching tensor data. Pure apart from opening the file.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection

GGUF_MAGIC = b"GGUF"

# GGUF value types (ggml/include/gguf.h).
_SCALARS = {
    0: struct.Struct("<B"),  # uint8
    1: struct.Struct("<b"),  # int8
    2: struct.Struct("<H"),  # uint16
    3: struct.Struct("<h"),  # int16
    4: struct.Struct("<I"),  # uint32
    5: struct.Struct("<i"),  # int32
    6: struct.Struct("<f"),  # float32
    7: struct.Struct("<?"),  # bool
    10: struct.Struct("<Q"),  # uint64
    11: struct.Struct("<q"),  # int64
    12: struct.Struct("<d"),  # float64
}
_STRING, _ARRAY = 8, 9
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class GGUFError(ValueError):
    """The file is not a GGUF file, or its metadata is cut short."""


@dataclass(frozen=True)
class GGUFMetadata:
    """A GGUF file's header facts and the metadata values that were read."""

    path: Path
    version: int
    tensor_count: int
    values: dict[str, Any] = field(default_factory=dict)
    skipped: frozenset[str] = frozenset()

    @property
    def architecture(self) -> str | None:
        return self.values.get("general.architecture")

    def arch_value(self, key: str, default: Any = None) -> Any:
        """An architecture-scoped value, e.g. `context_length` → `gpt-oss.context_length`."""
        return self.values.get(f"{self.architecture}.{key}", default)


def read_metadata(path: str | Path, *, skip_arrays_over: int | None = 64,
                  include: Collection[str] = ()) -> GGUFMetadata:
    """Read a GGUF file's metadata.

    Arrays longer than `skip_arrays_over` items (the 201k-entry vocabulary) are
    skipped unless their key is in `include`, so listing models stays fast.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return _parse(path, view, skip_arrays_over, frozenset(include))
    except (ValueError, OSError) as exc:
        if isinstance(exc, GGUFError):
            raise
        raise GGUFError(f"{path}: cannot read GGUF metadata ({exc})") from exc


def _parse(path: Path, buf: mmap.mmap, skip_over: int | None, include: frozenset[str]) -> GGUFMetadata:
    if buf[:4] != GGUF_MAGIC:
        raise GGUFError(f"{path}: not a GGUF file (magic {bytes(buf[:4])!r})")
    try:
        version = _U32.unpack_from(buf, 4)[0]
        tensor_count, kv_count = struct.unpack_from("<QQ", buf, 8)
        offset = 24
        values: dict[str, Any] = {}
        skipped: set[str] = set()
        for _ in range(kv_count):
            key, offset = _read_string(buf, offset)
            kind = _U32.unpack_from(buf, offset)[0]
            offset += 4
            if kind == _ARRAY:
                item_kind = _U32.unpack_from(buf, offset)[0]
                count = _U64.unpack_from(buf, offset + 4)[0]
                offset += 12
                wanted = key in include or skip_over is None or count <= skip_over
                items, offset = _read_array(buf, offset, item_kind, count, keep=wanted)
                if wanted:
                    values[key] = items
                else:
                    skipped.add(key)
            else:
                values[key], offset = _read_value(buf, offset, kind)
    except struct.error as exc:
        raise GGUFError(f"{path}: GGUF metadata is truncated ({exc})") from exc
    return GGUFMetadata(path, version, tensor_count, values, frozenset(skipped))


def _read_string(buf: mmap.mmap, offset: int) -> tuple[str, int]:
    length = _U64.unpack_from(buf, offset)[0]
    start = offset + 8
    end = start + length
    if end > len(buf):
        raise struct.error("string runs past the end of the file")
    return buf[start:end].decode("utf-8", errors="surrogateescape"), end


def _read_value(buf: mmap.mmap, offset: int, kind: int) -> tuple[Any, int]:
    if kind == _STRING:
        return _read_string(buf, offset)
    scalar = _SCALARS.get(kind)
    if scalar is None:
        raise GGUFError(f"unknown GGUF value type {kind}")
    return scalar.unpack_from(buf, offset)[0], offset + scalar.size


def _read_array(buf: mmap.mmap, offset: int, kind: int, count: int, *, keep: bool) -> tuple[list[Any], int]:
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        end = offset + scalar.size * count
        if end > len(buf):
            raise struct.error("array runs past the end of the file")
        items = [v[0] for v in scalar.iter_unpack(buf[offset:end])] if keep else []
        return items, end
    if kind == _STRING:
        items: list[Any] = []
        for _ in range(count):
            if keep:
                text, offset = _read_string(buf, offset)
                items.append(text)
            else:
                offset += 8 + _U64.unpack_from(buf, offset)[0]
        return items, offset
    if kind == _ARRAY:
        nested: list[Any] = []
        for _ in range(count):
            inner_kind = _U32.unpack_from(buf, offset)[0]
            inner_count = _U64.unpack_from(buf, offset + 4)[0]
            inner, offset = _read_array(buf, offset + 12, inner_kind, inner_count, keep=keep)
            nested.append(inner)
        return nested, offset
    raise GGUFError(f"unknown GGUF array item type {kind}")


def quantization_name(file_type: int | None) -> str | None:
    """llama.cpp's `general.file_type` as the name people use (Q4_K_M, MXFP4 …)."""
    names = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
             11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
             17: "Q5_K_M", 18: "Q6_K", 32: "BF16", 38: "MXFP4"}
    return names.get(file_type) if file_type is not None else None
