"""Read the key-value metadata of a GGUF file without loading the model.

Model discovery (`model where`, the status bar) and the offline vocabulary both
need a GGUF's metadata long before llama.cpp is imported; this reader keeps that
cheap: it maps the file and stops at the end of the metadata section, never
touching tensor data. Pure apart from opening the file.

A GGUF file is untrusted input (a download, a cache another tool filled, a
path someone passed): every length, count and nesting depth is capped before
it is used, nested arrays are read with an explicit stack (no recursion), only
regular files are opened (a FIFO passed as `--model` is refused at once instead
of blocking), and values are read with their declared type so callers can ask
for a key *with* the type they need (`GGUFMetadata.typed`).
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection

GGUF_MAGIC = b"GGUF"

# Caps: far above any real model (gpt-oss-20b: ~40 keys, 459 tensors, 201,088
# tokens, 446k merges, an 8 KB chat template, ~12 MB of metadata).
MAX_KEYS = 1 << 16
MAX_TENSORS = 1 << 20
MAX_KEY_BYTES = 1 << 16
MAX_STRING_BYTES = 16 << 20
MAX_ARRAY_ITEMS = 1 << 24
MAX_KEPT_ITEMS = 1 << 20  # items of one array turned into Python objects
MAX_ARRAY_DEPTH = 4
MAX_METADATA_BYTES = 512 << 20

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
    """The file is not a GGUF file, its metadata is cut short, or it breaks a cap."""


@dataclass(frozen=True)
class GGUFMetadata:
    """A GGUF file's header facts and the metadata values that were read.

    `array_lengths` holds the item count of every array, kept or skipped, so a
    check can compare the vocabulary size without reading 201,088 strings.
    """

    path: Path
    version: int
    tensor_count: int
    values: dict[str, Any] = field(default_factory=dict)
    skipped: frozenset[str] = frozenset()
    array_lengths: dict[str, int] = field(default_factory=dict)

    @property
    def architecture(self) -> str | None:
        value = self.values.get("general.architecture")
        return value if isinstance(value, str) else None

    def arch_value(self, key: str, default: Any = None) -> Any:
        """An architecture-scoped value, e.g. `context_length` → `gpt-oss.context_length`."""
        return self.values.get(f"{self.architecture}.{key}", default)

    def typed(self, key: str, kind: type | tuple[type, ...]) -> Any:
        """The value of `key` if it has the wanted Python type, None if absent.

        Raises GGUFError naming the key when it is present with another type
        (a bool is not an int here, and an int is accepted where a float is wanted).
        """
        if key not in self.values:
            return None
        value = self.values[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, bool) and bool not in kinds:
            raise GGUFError(f"{key} is a boolean, expected {_kind_names(kinds)}")
        if not isinstance(value, kinds):
            raise GGUFError(f"{key} is {_describe(value)}, expected {_kind_names(kinds)}")
        return value


def open_regular(path: str | Path) -> int:
    """A read-only descriptor for `path`, which must be a regular file (links to one are fine).

    Opened non-blocking, so a FIFO or a device cannot stall us before the type check."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise GGUFError(f"{path}: not a regular file ({_file_kind(mode)})")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_metadata(path: str | Path, *, skip_arrays_over: int | None = 64,
                  include: Collection[str] = (), stop_when: Collection[str] = ()) -> GGUFMetadata:
    """Read a GGUF file's metadata.

    Arrays longer than `skip_arrays_over` items (the 201k-entry vocabulary) are
    skipped unless their key is in `include`, so listing models stays fast.
    With `stop_when`, reading ends as soon as every one of those keys was seen
    (an array's length is known from its header, before its items).
    """
    path = Path(path)
    try:
        fd = open_regular(path)
        try:
            if os.fstat(fd).st_size < 24:
                raise GGUFError(f"{path}: not a GGUF file (only {os.fstat(fd).st_size} bytes)")
            with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as view:
                return _Parser(path, view, skip_arrays_over, frozenset(include), frozenset(stop_when)).parse()
        finally:
            os.close(fd)
    except GGUFError:
        raise
    except (ValueError, OSError) as exc:
        raise GGUFError(f"{path}: cannot read GGUF metadata ({exc})") from exc


class _Parser:
    """One pass over the metadata section, every read bounds-checked."""

    def __init__(self, path: Path, buf: mmap.mmap, skip_over: int | None, include: frozenset[str],
                 stop_when: frozenset[str] = frozenset()) -> None:
        self.path = path
        self.buf = buf
        self.size = min(len(buf), MAX_METADATA_BYTES + 24)
        self.offset = 0
        self.skip_over = skip_over
        self.include = include
        self.stop_when = stop_when

    def fail(self, what: str) -> GGUFError:
        return GGUFError(f"{self.path}: {what}")

    def need(self, n: int) -> int:
        """Reserve `n` bytes at the cursor; returns where they start."""
        start = self.offset
        if n < 0 or start + n > self.size:
            if start + n > MAX_METADATA_BYTES:
                raise self.fail(f"GGUF metadata is larger than {MAX_METADATA_BYTES >> 20} MiB")
            raise self.fail(f"GGUF metadata is truncated (needs {n} bytes at offset {start})")
        self.offset = start + n
        return start

    def u32(self) -> int:
        return _U32.unpack_from(self.buf, self.need(4))[0]

    def u64(self) -> int:
        return _U64.unpack_from(self.buf, self.need(8))[0]

    def string(self, limit: int, keep: bool = True) -> str | None:
        length = self.u64()
        if length > limit:
            raise self.fail(f"a string of {length} bytes at offset {self.offset - 8} (limit {limit})")
        start = self.need(length)
        return self.buf[start:start + length].decode("utf-8", errors="surrogateescape") if keep else None

    def parse(self) -> GGUFMetadata:
        if self.buf[:4] != GGUF_MAGIC:
            raise self.fail(f"not a GGUF file (magic {bytes(self.buf[:4])!r})")
        self.offset = 4
        version = self.u32()
        tensor_count, kv_count = self.u64(), self.u64()
        if kv_count > MAX_KEYS:
            raise self.fail(f"{kv_count} metadata keys (limit {MAX_KEYS})")
        if tensor_count > MAX_TENSORS:
            raise self.fail(f"{tensor_count} tensors (limit {MAX_TENSORS})")
        values: dict[str, Any] = {}
        skipped: set[str] = set()
        lengths: dict[str, int] = {}
        waiting = set(self.stop_when)
        for _ in range(kv_count):
            key = self.string(MAX_KEY_BYTES)
            kind = self.u32()
            waiting.discard(key)
            if kind == _ARRAY:
                item_kind, count = self.u32(), self.u64()
                lengths[key] = count
                if self.stop_when and not waiting:
                    break
                wanted = key in self.include or self.skip_over is None or count <= self.skip_over
                items = self.array(item_kind, count, keep=wanted)
                if wanted:
                    values[key] = items
                else:
                    skipped.add(key)
            else:
                values[key] = self.scalar(kind)
            if self.stop_when and not waiting:
                break
        return GGUFMetadata(self.path, version, tensor_count, values, frozenset(skipped), lengths)

    def scalar(self, kind: int) -> Any:
        if kind == _STRING:
            return self.string(MAX_STRING_BYTES)
        form = _SCALARS.get(kind)
        if form is None:
            raise self.fail(f"unknown GGUF value type {kind}")
        return form.unpack_from(self.buf, self.need(form.size))[0]

    def array(self, kind: int, count: int, *, keep: bool) -> list[Any] | None:
        """An array's items; arrays of arrays are walked with an explicit stack, depth capped."""
        if kind != _ARRAY:
            return self.flat_array(kind, count, keep)
        self.check_count(count, keep)
        root: list[Any] = []
        stack: list[tuple[int, list[Any]]] = [(count, root)]
        while stack:
            remaining, items = stack[-1]
            if remaining == 0:
                stack.pop()
                continue
            stack[-1] = (remaining - 1, items)
            inner_kind, inner_count = self.u32(), self.u64()
            if inner_kind == _ARRAY:
                if len(stack) >= MAX_ARRAY_DEPTH:
                    raise self.fail(f"arrays nested deeper than {MAX_ARRAY_DEPTH} levels")
                self.check_count(inner_count, keep)
                inner: list[Any] = []
                items.append(inner)
                stack.append((inner_count, inner))
            else:
                items.append(self.flat_array(inner_kind, inner_count, keep))
        return root if keep else None

    def flat_array(self, kind: int, count: int, keep: bool) -> list[Any] | None:
        self.check_count(count, keep)
        form = _SCALARS.get(kind)
        if form is not None:
            start = self.need(form.size * count)
            return [v[0] for v in form.iter_unpack(self.buf[start:self.offset])] if keep else None
        if kind == _STRING:
            if keep:
                return [self.string(MAX_STRING_BYTES) for _ in range(count)]
            for _ in range(count):
                self.string(MAX_STRING_BYTES, keep=False)
            return None
        raise self.fail(f"unknown GGUF array item type {kind}")

    def check_count(self, count: int, keep: bool) -> None:
        limit = MAX_KEPT_ITEMS if keep else MAX_ARRAY_ITEMS
        if count > limit:
            raise self.fail(f"an array of {count} items (limit {limit})")


def _file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return f"an array of {len(value)} items"
    return {str: "a string", int: "an integer", float: "a float"}.get(type(value), type(value).__name__)


def _kind_names(kinds: tuple[type, ...]) -> str:
    return " or ".join({str: "a string", int: "an integer", float: "a number", bool: "a boolean",
                        list: "an array"}.get(k, k.__name__) for k in kinds)


def quantization_name(file_type: int | None) -> str | None:
    """llama.cpp's `general.file_type` as the name people use (Q4_K_M, MXFP4 …)."""
    names = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
             11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
             17: "Q5_K_M", 18: "Q6_K", 32: "BF16", 38: "MXFP4"}
    return names.get(file_type) if isinstance(file_type, int) else None
