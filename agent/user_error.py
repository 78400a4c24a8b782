"""The one base class for a problem the user must fix before anything can run.

A bad flag, no model, not a git repository, a dirty work tree, a malformed
setting: each is said in one line (no traceback) and the command exits 2
(`EXIT_USAGE`). Raise a subclass where the problem is found (`SetupError` in the
runtime, `ConfigError` in the settings, `UsageError` in the command line); the
command line catches this base, so a new kind needs no new handler.
"""


class UserError(Exception):
    """Something the user can fix; the message is the whole explanation (one line, exit code 2)."""
