"""Hostile GGUF files: caps, depth, types, special files, escapes, and values llama.cpp aborts on.

Well-formed files with hostile values are written with the `gguf` package, as
a model converter would; malformed structures (lengths near 2^64, arrays nested
200,000 deep) are written byte by byte, since no writer produces them.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gptoss_agent.agent.model import vocab
from gptoss_agent.agent.model.gguf_meta import MAX_ARRAY_DEPTH, GGUFError, read_metadata
from gptoss_agent.agent.model.check import ModelCheckError, NotGptOssError, check_loadable, require_gpt_oss
from gptoss_agent.agent.model.discovery import describe_gguf

# The tiny gpt-oss's hyper-parameters (tests/fixtures/tiny_gptoss.py), as a converter writes them.
BASE = {"context_length": 4096, "embedding_length": 64, "block_count": 2, "feed_forward_length": 64,
        "attention.head_count": 4, "attention.head_count_kv": 2, "attention.key_length": 16,
        "attention.value_length": 16, "rope.freq_base": 150000.0, "attention.layer_norm_rms_epsilon": 1e-5,
        "expert_count": 4, "expert_used_count": 2, "expert_feed_forward_length": 64,
        "attention.sliding_window": 128, "rope.scaling.type": "yarn", "rope.scaling.factor": 32.0}


def write_gguf(path: Path, *, arch: str = "gpt-oss", drop: tuple[str, ...] = (), tokens: list[str] | None = None,
               extra: dict | None = None, name: str = "test model", **overrides) -> Path:
    """A metadata-only GGUF (no tensors) with the base hyper-parameters, some replaced or dropped."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    values = {**BASE, **{k.replace("__", "."): v for k, v in overrides.items()}}
    for key, value in values.items():
        if key not in drop:
            _add(writer, f"{arch}.{key}", value)
    for key, value in (extra or {}).items():
        _add(writer, key, value)
    writer.add_tokenizer_model("gpt2")
    if tokens is not None:
        writer.add_token_list(tokens)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return path


def _add(writer, key: str, value) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_uint32(key, value) if 0 <= value < 2**32 else writer.add_int64(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    else:
        writer.add_array(key, value)


def _str(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def raw_gguf(path: Path, kvs: list[bytes], *, kv_count: int | None = None, tensors: int = 0) -> Path:
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, tensors, len(kvs) if kv_count is None else kv_count)
                     + b"".join(kvs))
    return path


ARCH = _str("general.architecture") + struct.pack("<I", 8) + _str("gpt-oss")


# ---------------------------------------------------------------------- structure

def test_a_valid_file_passes_the_checks(tmp_path):
    """The baseline every hostile variant below departs from (so each refusal is the variant's doing)."""
    meta = read_metadata(write_gguf(tmp_path / "ok.gguf"))
    check_loadable(meta)


def test_arrays_nested_200000_deep_are_refused_without_recursion(tmp_path):
    depth = 200_000
    nested = struct.pack("<IQ", 9, 1) * depth + struct.pack("<IQ", 4, 0)
    path = raw_gguf(tmp_path / "deep.gguf", [ARCH, _str("x.deep") + struct.pack("<I", 9) + nested])
    with pytest.raises(GGUFError, match=f"nested deeper than {MAX_ARRAY_DEPTH}"):
        read_metadata(path, skip_arrays_over=None)
    with pytest.raises(GGUFError, match="nested deeper"):
        read_metadata(path)  # skipped arrays are walked with the same bound


@pytest.mark.parametrize("kv, match", [
    (_str("x") + struct.pack("<I", 8) + struct.pack("<Q", 2**62), "a string of 4611686018427387904 bytes"),
    (_str("x") + struct.pack("<IIQ", 9, 4, 2**60), "an array of 1152921504606846976 items"),
    (_str("x") + struct.pack("<IIQ", 9, 8, 2**40), "an array of 1099511627776 items"),
    (_str("x") + struct.pack("<I", 99), "unknown GGUF value type 99"),
    (struct.pack("<Q", 2**63) + b"key", "a string of"),
])
def test_hostile_lengths_and_types_are_refused_before_any_allocation(tmp_path, kv, match):
    path = raw_gguf(tmp_path / "bad.gguf", [ARCH, kv])
    with pytest.raises(GGUFError, match=match):
        read_metadata(path, include={"x"})


def test_an_absurd_key_count_is_refused_at_once(tmp_path):
    path = raw_gguf(tmp_path / "keys.gguf", [ARCH], kv_count=2**40)
    with pytest.raises(GGUFError, match="1099511627776 metadata keys"):
        read_metadata(path)


def test_wrong_types_in_the_vocabulary_are_a_vocabulary_error(tmp_path):
    path = write_gguf(tmp_path / "ints.gguf", extra={"tokenizer.ggml.tokens": list(range(300))})
    with pytest.raises(vocab.VocabularyError, match="not strings|not a byte-level"):
        vocab.derive_from_gguf(path)
    model_as_number = raw_gguf(tmp_path / "model.gguf", [
        ARCH, _str("tokenizer.ggml.model") + struct.pack("<II", 4, 7),
        _str("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 1) + _str("a")])
    with pytest.raises(vocab.VocabularyError, match="tokenizer.ggml.model is an integer, expected a string"):
        vocab.derive_from_gguf(model_as_number)


def test_a_fifo_is_refused_at_once_not_read(tmp_path):
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read():
        try:
            read_metadata(fifo)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcome.append(exc)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(10)
    assert outcome, "reading a FIFO blocked"
    assert isinstance(outcome[0], GGUFError) and "a FIFO" in str(outcome[0])


def test_metadata_strings_are_escaped_before_a_person_sees_them(tmp_path):
    evil = "gpt-oss\x1b]52;c;ZXZpbA==\x07\x1b]0;pwned\x07\u202eexe.txt\u200b"
    info = describe_gguf(write_gguf(tmp_path / "evil.gguf", name=evil, tokens=["a", "b"]))
    shown = "\n".join(str(v) for v in info.values())
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown and "\u200b" not in shown
    assert "ZXZpbA==" in info["name"]  # the content is still there to see, made harmless


# ---------------------------------------------------------------------- hyper-parameters

HOSTILE = [
    ({"expert_used_count": 9}, "expert_used_count = 9 is more than expert_count = 4"),
    ({"expert_count": 5000}, "expert_count = 5000 is outside 0..1024"),
    ({"block_count": 0}, "block_count = 0 is outside 1..512"),
    ({"block_count": 100_000}, "block_count = 100000 is outside 1..512"),
    ({"attention__head_count_kv": 0}, "head_count_kv is 0"),
    ({"attention__head_count_kv": 3}, "head_count_kv must divide"),
    ({"attention__head_count": [4, 4, 4]}, "has 3 entries for 2 layers"),
    ({"rope__scaling__type": "bogus\x1b[2J"}, "rope.scaling.type = 'bogus\\x1b[2J' is not one of"),
    ({"attention__layer_norm_rms_epsilon": 0.0}, "layer_norm_rms_epsilon = 0.0 is not a positive number"),
    ({"attention__layer_norm_rms_epsilon": float("nan")}, "is not a positive number"),
    ({"attention__sliding_window": 0}, "sliding_window = 0 is outside"),
    ({"context_length": 0}, "context_length = 0 is outside"),
    ({"block_count": "two"}, "block_count is a string, expected an integer"),
    ({"expert_count": True}, "expert_count is a boolean"),
]


@pytest.mark.parametrize("overrides, message", HOSTILE, ids=[m[:40] for _, m in HOSTILE])
def test_hyper_parameters_llama_cpp_asserts_on_are_refused(tmp_path, overrides, message):
    path = write_gguf(tmp_path / "hostile.gguf", **overrides)
    with pytest.raises(ModelCheckError, match=_literal(message)):
        check_loadable(read_metadata(path))


def test_missing_required_keys_are_named(tmp_path):
    path = write_gguf(tmp_path / "missing.gguf", drop=("attention.layer_norm_rms_epsilon", "block_count"))
    with pytest.raises(ModelCheckError, match="block_count is missing.*layer_norm_rms_epsilon is missing"):
        check_loadable(read_metadata(path))


def test_vocabulary_arrays_must_agree(tmp_path):
    path = write_gguf(tmp_path / "vocab.gguf", tokens=["a", "b", "c"],
                      extra={"tokenizer.ggml.token_type": [1, 1], "tokenizer.ggml.eos_token_id": 7})
    with pytest.raises(ModelCheckError, match="token_type has 2 entries for 3 tokens.*eos_token_id = 7 is outside 0..2"):
        check_loadable(read_metadata(path))


def test_only_gpt_oss_with_the_harmony_vocabulary_is_the_model(tmp_path):
    gemma = read_metadata(write_gguf(tmp_path / "gemma.gguf", arch="gemma3"))
    with pytest.raises(NotGptOssError, match="'gemma3' model, not gpt-oss.*--allow-any-model"):
        require_gpt_oss(gemma)
    require_gpt_oss(gemma, allow_any_model=True)
    small_vocab = read_metadata(write_gguf(tmp_path / "small.gguf", tokens=["a", "b"]))
    with pytest.raises(NotGptOssError, match="not o200k_harmony \\(2 tokens"):
        require_gpt_oss(small_vocab)


LOAD = """
import sys
sys.path.insert(0, {root!r})
{body}
"""


@pytest.mark.skipif(__import__("importlib").util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
def test_llama_cpp_really_aborts_on_such_a_file_and_the_backend_refuses_it_first(tmp_path):
    """The hazard is real (raw llama.cpp dies with SIGABRT); through LlamaBackend it is a clear error."""
    path = write_gguf(tmp_path / "abort.gguf", expert_used_count=9)
    root = str(Path(__file__).resolve().parents[2])
    raw = ("import llama_cpp as ll\nll.llama_backend_init()\n"
           "ll.llama_model_load_from_file(sys.argv[1].encode(), ll.llama_model_default_params())\nprint('loaded')")
    ours = ("from gptoss_agent.agent.model.backends.llama import LlamaBackend, BackendError\n"
            "try:\n    LlamaBackend(sys.argv[1])\nexcept BackendError as exc:\n    print('refused:', exc)")
    env = {**os.environ, "PYTHONFAULTHANDLER": ""}
    crashed = subprocess.run([sys.executable, "-c", LOAD.format(root=root, body=raw), str(path)],
                             capture_output=True, text=True, timeout=120, env=env)
    assert crashed.returncode < 0 or crashed.returncode == 134, crashed.stdout + crashed.stderr[-500:]
    refused = subprocess.run([sys.executable, "-c", LOAD.format(root=root, body=ours), str(path)],
                             capture_output=True, text=True, timeout=120, env=env)
    assert refused.returncode == 0, refused.stderr[-2000:]
    assert "refused:" in refused.stdout and "expert_used_count = 9 is more than expert_count = 4" in refused.stdout


def _literal(text: str) -> str:
    import re

    return re.escape(text).replace("\\.\\*", ".*") if ".*" in text else re.escape(text)
