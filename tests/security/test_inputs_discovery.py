"""Model discovery over caches someone else filled: links, special files, floods, malformed manifests.

Every test builds a real cache layout under a temporary HOME with real links,
FIFOs and files, and runs the real search. Calls that used to hang run in a
thread with a join timeout, so a regression fails instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gptoss_agent.agent.model import discovery as models
from tests.unit.test_models import gguf, gpt_oss_header


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "GPTOSS_AGENT_DATA_DIR": str(tmp_path / "data")}


def search_within(seconds: float, *args, **kwargs) -> models.ModelSearch:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(models.search(*args, **kwargs)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert result, f"model search did not finish within {seconds} s"
    return result[0]


def lm_studio(tmp_path: Path) -> Path:
    folder = tmp_path / "home/.lmstudio/models"
    folder.mkdir(parents=True)
    return folder


def test_links_to_the_folder_itself_do_not_fan_out(tmp_path):
    folder = lm_studio(tmp_path)
    real = gguf(folder / "pub" / "gpt-oss-20b.gguf")
    for i in range(25):
        (folder / f"loop{i}").symlink_to(".")
        (folder / "pub" / f"up{i}").symlink_to("..")
    result = search_within(20, env=env_for(tmp_path))
    assert result.chosen == real and result.places[5].found == (real,)


def test_directory_links_out_of_a_cache_are_not_followed(tmp_path):
    outside = tmp_path / "elsewhere"
    gguf(outside / "gpt-oss-20b.gguf")
    snapshots = tmp_path / "home/.cache/huggingface/hub/models--x--gpt-oss-20b-GGUF/snapshots"
    snapshots.mkdir(parents=True)
    (snapshots / "abc").symlink_to(outside)
    (lm_studio(tmp_path) / "linked").symlink_to(outside)
    result = search_within(20, env=env_for(tmp_path))
    assert result.chosen is None


def test_file_links_to_regular_blobs_are_found_and_links_to_devices_are_not(tmp_path):
    repo = tmp_path / "home/.cache/huggingface/hub/models--ggml-org--gpt-oss-20b-GGUF"
    blob = gguf(repo / "blobs" / "0123")
    (repo / "snapshots/main").mkdir(parents=True)
    (repo / "snapshots/main/gpt-oss-20b-mxfp4.gguf").symlink_to("../../blobs/0123")
    (repo / "snapshots/main/gpt-oss-20b-zero.gguf").symlink_to("/dev/zero")
    result = search_within(20, env=env_for(tmp_path))
    assert result.chosen == repo / "snapshots/main/gpt-oss-20b-mxfp4.gguf" and result.chosen.resolve() == blob
    assert len(result.places[4].found) == 1


def test_a_fifo_in_a_cache_or_as_model_never_blocks(tmp_path):
    folder = lm_studio(tmp_path)
    os.mkfifo(folder / "gpt-oss-20b.gguf")
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    result = search_within(20, str(fifo), env=env_for(tmp_path))
    assert result.chosen is None
    assert result.places[0].note.startswith("not a regular file")


def test_the_walk_is_bounded_in_entries(tmp_path):
    folder = lm_studio(tmp_path) / "flood"
    folder.mkdir()
    for i in range(models.MAX_WALK_ENTRIES + 50):
        (folder / f"f{i:06d}").touch()
    result = search_within(60, env=env_for(tmp_path))
    assert f"stopped after {models.MAX_WALK_ENTRIES} entries" in result.places[5].note


OLLAMA_MANIFEST = "home/.ollama/models/manifests/registry.ollama.ai/library/gpt-oss/20b"
GOOD_DIGEST = "ab" * 32


@pytest.mark.parametrize("content, note", [
    (b'{"layers": {"mediaType": "x"}}', "no list of layers"),
    (b'["not", "an", "object"]', "no list of layers"),
    (b'{"layers": ["a", 1, null]}', "manifest names no model layer"),
    (b'{"layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": 7}]}', "no valid sha256 digest"),
    (b'{"layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:../../../../etc/passwd"}]}',
     "no valid sha256 digest"),
    (b"\xff\xfe\x00binary\x80", "not UTF-8 text"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    (b'{"layers": [' + b" " * (2 << 20) + b"]}", "larger than 1048576 bytes"),
])
def test_malformed_ollama_manifests_are_a_one_line_note(tmp_path, content, note):
    manifest = tmp_path / OLLAMA_MANIFEST
    manifest.parent.mkdir(parents=True)
    manifest.write_bytes(content)
    place = search_within(20, env=env_for(tmp_path)).places[-1]
    assert place.found == () and note in place.note and "\n" not in place.note


def test_a_manifest_that_is_a_fifo_is_a_note_not_a_hang(tmp_path):
    manifest = tmp_path / OLLAMA_MANIFEST
    manifest.parent.mkdir(parents=True)
    os.mkfifo(manifest)
    place = search_within(20, env=env_for(tmp_path)).places[-1]
    assert "cannot be read" in place.note


def test_model_where_survives_a_malformed_manifest(tmp_path):
    manifest = tmp_path / OLLAMA_MANIFEST
    manifest.parent.mkdir(parents=True)
    manifest.write_bytes(b'{"layers": 5}')
    result = subprocess.run([sys.executable, "-m", "gptoss_agent.agent.frontends.cli", "model", "where"], capture_output=True, text=True,
                            env={**os.environ, **env_for(tmp_path)}, timeout=60,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert "malformed manifest" in result.stdout and "Traceback" not in result.stderr


def test_several_hugging_face_repos_the_choice_and_its_reason(tmp_path):
    hub = tmp_path / "home/.cache/huggingface/hub"
    gguf(hub / "models--aaa--gpt-oss-20b-GGUF/snapshots/1/gpt-oss-20b-Q4_K_M.gguf")
    pulled = gguf(hub / "models--ggml-org--gpt-oss-20b-GGUF/snapshots/2/gpt-oss-20b-mxfp4.gguf")
    gguf(hub / "models--unsloth--gpt-oss-120b-GGUF/snapshots/3/gpt-oss-120b-F16.gguf")
    result = search_within(20, env=env_for(tmp_path))
    assert result.chosen == pulled
    assert "of its 3 candidates" in result.reason and "published by ggml-org" in result.reason
    assert "because" in result.report() and "ggml-org" in result.report()


def test_a_gguf_that_is_not_gpt_oss_is_refused_unless_any_model_is_allowed(tmp_path):
    other = gguf(tmp_path / "gemma.gguf", gpt_oss_header(arch="gemma3"))
    refused = models.search(str(other), env=env_for(tmp_path))
    assert refused.chosen is None and "'gemma3' model, not gpt-oss" in refused.places[0].note
    assert "--allow-any-model" in refused.places[0].note
    assert models.search(str(other), env=env_for(tmp_path), allow_any_model=True).chosen == other


def test_names_in_the_report_are_escaped(tmp_path):
    evil = lm_studio(tmp_path) / "pub\x1b]0;owned\x07" / "gpt-oss-20b\u202e.gguf"
    gguf(evil)
    report = search_within(20, env=env_for(tmp_path)).report()
    assert "\x1b" not in report and "\x07" not in report and "\u202e" not in report
    assert "owned" in report
