"""How the sandbox starts its own Python launchers: isolated, importing our code from where this process did.

`python -I` ignores PYTHON* variables and never puts the current folder (the untrusted repository) on the
import path, so nothing a repository holds can stand in for the launcher. The package is found the way this
process found it: through site-packages (a wheel or an editable install), or, where it was imported from a plain
folder on the path, from that folder, passed explicitly.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

_BOOTSTRAP = ("import sys; folder = sys.argv.pop(1); folder and sys.path.insert(0, folder); "
              "from {module} import main; sys.exit(main(sys.argv[1:]))")


@lru_cache(maxsize=1)
def _import_folder() -> str:
    """The folder holding `gptoss_agent/` when it was imported from a plain folder; empty when site-packages did
    (an installed wheel, or an editable install's finder). Found once per process: every command asks."""
    import site

    here = Path(__file__).resolve()  # .../gptoss_agent/tools/sandbox/isolated_python.py
    if len(here.parents) > 3 and here.parents[2].name == "gptoss_agent" \
            and str(here.parents[3]) not in site.getsitepackages():
        return str(here.parents[3])
    return ""


def launcher_command(module: str) -> list[str]:
    """argv that runs MODULE's `main(argv)` in an isolated interpreter (append the launcher's own arguments)."""
    return [sys.executable, "-I", "-c", _BOOTSTRAP.format(module=module), _import_folder()]
