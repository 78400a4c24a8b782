"""The exit codes of every command, declared once (README: "Exit codes").

The command line, the headless runs and batch return these; the README and
scripts rely on them, so a new meaning gets a new number, never a reused one.
"""

EXIT_OK = 0  # completed (for `fix`: the suite passes and the fix is committed)
EXIT_FAILED = 1  # the task failed
EXIT_USAGE = 2  # something the user must fix first (an agent.user_error.UserError), said in one line
EXIT_CANCELLED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left
