"""The Landlock fallback's launcher: confine this process, then exec the command.

Run as `python -m tools.sandbox_launch --write DIR [--write DIR …] -- CMD …`
by `tools.sandbox` only. Landlock limits writes to the given directories;
seccomp refuses every new socket (there is no network namespace here), ptrace,
bpf and io_uring. If either cannot be applied, the command does not run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("sandbox_launch: usage: --write DIR ... -- CMD ...", file=sys.stderr)
        return 126
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1:]
    writable = [Path(options[i + 1]) for i, opt in enumerate(options) if opt == "--write"]
    readable = [Path(options[i + 1]) for i, opt in enumerate(options) if opt == "--read"]
    if not command:
        print("sandbox_launch: no command", file=sys.stderr)
        return 126
    from tools.landlock import restrict
    from tools.seccomp import build_filter, install

    try:
        restrict(writable, readable=readable or None, deny_tcp=True)
        install(build_filter(deny_all_sockets=True))
    except OSError as exc:
        print(f"sandbox_launch: cannot confine the command: {exc}", file=sys.stderr)
        return 126
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"{command[0]}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
