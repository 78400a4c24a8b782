"""Model discovery on disk, offline, in the documented order."""

from __future__ import annotations

import json
import struct

import pytest

from gptoss_agent.agent.model import discovery as models

def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def gpt_oss_header(arch: str = "gpt-oss", vocab: int = 201_088) -> bytes:
    """The start of a GGUF as discovery reads it: architecture, tokenizer, and the vocabulary's length."""
    kvs = [_string("general.architecture") + struct.pack("<I", 8) + _string(arch),
           _string("tokenizer.ggml.model") + struct.pack("<I", 8) + _string("gpt2"),
           _string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, vocab)]
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs)


def gguf(path, header: bytes | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header or gpt_oss_header())
    return path


def empty_env(tmp_path):
    return {"HOME": str(tmp_path / "home"), "GPTOSS_AGENT_DATA_DIR": str(tmp_path / "data")}


def test_nothing_found_names_every_place_and_the_fetch_command(tmp_path):
    with pytest.raises(models.ModelNotFoundError) as caught:
        models.find_model(env=empty_env(tmp_path))
    message = str(caught.value)
    for label in ("--model", "GPTOSS_AGENT_MODEL", "Hugging Face cache", "LM Studio", "Ollama"):
        assert label in message
    assert "gptoss-agent model pull" in message


def test_explicit_path_wins_over_everything(tmp_path):
    env = empty_env(tmp_path)
    mine = gguf(tmp_path / "anything.gguf")
    env["GPTOSS_AGENT_MODEL"] = str(gguf(tmp_path / "env" / "gpt-oss-20b.gguf"))
    assert models.find_model(str(mine), env=env) == mine
    assert models.find_model(None, env=env) == tmp_path / "env" / "gpt-oss-20b.gguf"


def test_explicit_path_that_is_not_a_gguf_is_reported(tmp_path):
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"not a model")
    result = models.search(str(bad), env=empty_env(tmp_path))
    assert result.places[0].note == "not a GGUF file" and result.chosen is None


def test_huggingface_cache_layout(tmp_path):
    env = empty_env(tmp_path)
    snap = tmp_path / "home/.cache/huggingface/hub/models--ggml-org--gpt-oss-20b-GGUF/snapshots/abc123"
    found = gguf(snap / "gpt-oss-20b-mxfp4.gguf")
    gguf(tmp_path / "home/.cache/huggingface/hub/models--other--llama/snapshots/x/llama.gguf")
    assert models.find_model(env=env) == found


def test_hf_home_is_respected(tmp_path):
    env = empty_env(tmp_path) | {"HF_HOME": str(tmp_path / "hf")}
    found = gguf(tmp_path / "hf/hub/models--unsloth--gpt-oss-20b-GGUF/snapshots/1/gpt-oss-20b-Q4_K_M.gguf")
    assert models.find_model(env=env) == found


def test_lm_studio_folder(tmp_path):
    found = gguf(tmp_path / "home/.lmstudio/models/lmstudio-community/gpt-oss-20b-GGUF/gpt-oss-20b-MXFP4.gguf")
    assert models.find_model(env=empty_env(tmp_path)) == found


def test_ollama_manifest_points_at_a_gguf_blob(tmp_path):
    root = tmp_path / "home/.ollama/models"
    digest = "deadbeef" * 8
    blob = gguf(root / "blobs" / f"sha256-{digest}")
    manifest = root / "manifests/registry.ollama.ai/library/gpt-oss/20b"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:0000"},
        {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}"}]}))
    assert models.find_model(env=empty_env(tmp_path)) == blob


def test_pulled_model_folder_comes_before_other_tools_caches(tmp_path):
    env = empty_env(tmp_path)
    pulled = gguf(tmp_path / "data/models/gpt-oss-20b-mxfp4.gguf")
    gguf(tmp_path / "home/.lmstudio/models/x/gpt-oss-20b.gguf")
    assert models.find_model(env=env) == pulled


def test_split_gguf_picks_the_first_shard_and_prefers_20b(tmp_path):
    folder = tmp_path / "home/.lmstudio/models/x"
    gguf(folder / "gpt-oss-120b-00002-of-00002.gguf")
    gguf(folder / "gpt-oss-120b-00001-of-00002.gguf")
    twenty = gguf(folder / "gpt-oss-20b.gguf")
    found = models.search(env=empty_env(tmp_path)).places[5].found
    assert found[0] == twenty and all("00002-of" not in p.name for p in found)
