"""`gptoss-agent model pull`: the one command that uses the network.

Nothing else in the product calls this module. It downloads gpt-oss-20b's GGUF
from the Hugging Face hub with `huggingface_hub` (an optional extra), into our
own models folder, where model discovery finds it offline from then on.
"""

from __future__ import annotations

from pathlib import Path

from gptoss_agent.agent.model.discovery import PULL_FILE, PULL_REPO, models_dir


class PullError(RuntimeError):
    """The download cannot start or did not finish; the message says what to do."""


def pull_model(repo: str = PULL_REPO, filename: str = PULL_FILE, target: Path | None = None) -> Path:
    """Download the model file and return its local path."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise PullError("`model pull` needs huggingface_hub: pip install 'gptoss-agent[pull]' "
                        f"(or download {filename} from https://huggingface.co/{repo} and pass --model PATH)") from None
    folder = target or models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, local_dir=str(folder)))
    except Exception as exc:  # network, auth, disk: all end the command with the reason
        raise PullError(f"download of {repo}/{filename} failed: {exc}") from exc
