"""container.exec keeps the sandbox's PATH in a login shell (`bash -lc`, what gpt-oss writes most)."""

import pytest

from gptoss_agent.tools.shell import keep_path_in_login_shell


@pytest.mark.parametrize("argv, expected", [
    (["bash", "-lc", "pytest -q"], ["bash", "--noprofile", "-lc", "pytest -q"]),
    (["/bin/bash", "--login", "-c", "x"], ["/bin/bash", "--noprofile", "--login", "-c", "x"]),
    (["bash", "-o", "pipefail", "-lc", "x"], ["bash", "--noprofile", "-o", "pipefail", "-lc", "x"]),
    (["sh", "-lc", "x"], ["sh", "-c", "x"]),
    (["dash", "-l", "run.sh"], ["dash", "run.sh"]),
])
def test_login_shells_skip_the_profile(argv, expected):
    assert keep_path_in_login_shell(argv) == expected


@pytest.mark.parametrize("argv", [["bash", "-c", "ls -l"], ["bash", "script.sh", "-l"], ["python", "-lc"],
                                  ["ls", "-l"], []])
def test_everything_else_is_untouched(argv):
    assert keep_path_in_login_shell(argv) == argv
