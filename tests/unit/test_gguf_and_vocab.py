"""GGUF metadata reading and the offline vocabulary derived from it."""

from __future__ import annotations

import hashlib

import pytest

from gptoss_agent.agent.model import vocab
from gptoss_agent.agent.model.gguf_meta import GGUFError, read_metadata


def test_metadata_reads_back_what_the_gguf_writer_wrote(tiny_gguf, canonical_tiktoken):
    from tests.fixtures import tiny_gptoss

    ours = read_metadata(tiny_gguf, include={"tokenizer.ggml.tokens"})
    assert ours.architecture == "gpt-oss"
    assert ours.arch_value("attention.sliding_window") == tiny_gptoss.SLIDING_WINDOW
    assert ours.arch_value("expert_count") == tiny_gptoss.N_EXPERT
    assert ours.values["tokenizer.ggml.pre"] == "gpt-4o"
    tokens = ours.values["tokenizer.ggml.tokens"]
    ranks = tiny_gptoss.read_tiktoken_ranks(canonical_tiktoken)
    encode = vocab.byte_encoder()
    assert len(tokens) == vocab.HARMONY_VOCAB_SIZE
    for index in (0, 1000, 123_456, 199_997):
        assert tokens[index] == tiny_gptoss._as_text(ranks[index], encode)
    assert tokens[200_006] == "<|start|>"
    assert "tokenizer.ggml.merges" in ours.skipped  # long arrays are skipped unless asked for


def test_vocabulary_derived_from_the_gguf_is_the_canonical_file(tiny_gguf):
    data = vocab.derive_from_gguf(tiny_gguf)
    assert hashlib.sha256(data).hexdigest() == vocab.O200K_SHA256


def test_ensure_vocabulary_derives_and_caches_from_a_gguf(tiny_gguf, tmp_path):
    directory = vocab.ensure_vocabulary([tiny_gguf], directory=tmp_path / "v")
    assert (directory / vocab.O200K_FILENAME).is_file()
    assert vocab.ensure_vocabulary([], directory=directory) == directory  # cached: no GGUF needed now


def test_missing_vocabulary_is_a_clear_error(tmp_path):
    with pytest.raises(vocab.VocabularyError, match="model vocab PATH"):
        vocab.ensure_vocabulary([], directory=tmp_path / "empty")


def test_a_tampered_vocabulary_is_refused(canonical_tiktoken, tmp_path):
    data = bytearray(canonical_tiktoken.read_bytes())
    data[10] ^= 1
    with pytest.raises(vocab.VocabularyError, match="SHA-256"):
        vocab.install_vocabulary(bytes(data), "tampered", tmp_path)
    assert not (tmp_path / vocab.O200K_FILENAME).exists()


def test_not_a_gguf(tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"PK\x03\x04 this is a zip")
    with pytest.raises(GGUFError, match="not a GGUF file"):
        read_metadata(bogus)


def test_truncated_gguf_is_reported(tiny_gguf, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[:4096])
    with pytest.raises(GGUFError, match="truncated"):
        read_metadata(cut, include={"tokenizer.ggml.tokens"})


def test_non_gpt2_tokenizer_cannot_give_the_o200k_vocabulary(gemma_gguf):
    with pytest.raises(vocab.VocabularyError, match="not the o200k BPE"):
        vocab.derive_from_gguf(gemma_gguf)
