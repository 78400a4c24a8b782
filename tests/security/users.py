"""Whether this test process can act as another user, which some ownership tests need.

Being uid 0 is not enough: CI runs the suite as root inside a user namespace
(`unshare -rn`) where only uid 0 is mapped, so chown and setuid to `nobody`
fail there with EINVAL. The unprivileged CI run covers those properties as
`nobody` instead.
"""

from __future__ import annotations

import os

NOBODY = 65534


def _mapped(uid: int) -> bool:
    try:
        lines = open("/proc/self/uid_map", encoding="ascii").read().splitlines()
    except OSError:
        return True  # no user namespaces on this kernel: every uid is the host's
    for line in lines:
        inside, _outside, count = (int(field) for field in line.split())
        if inside <= uid < inside + count:
            return True
    return False


def can_become_nobody() -> bool:
    """True when this process may chown files to, and switch to, uid 65534."""
    return os.geteuid() == 0 and _mapped(NOBODY)


NEEDS_ANOTHER_USER = (
    "needs files owned by another user: real root (uid 0 with uid 65534 mapped) or an unprivileged run; "
    "inside `unshare -r` only uid 0 exists (the unprivileged CI run covers this as nobody)"
)
