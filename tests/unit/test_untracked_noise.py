"""tools/untracked_noise.py: untracked environments, caches and build outputs are not the user's work."""

from gptoss_agent.tools.untracked_noise import is_noise, user_changes


def test_environments_caches_and_build_outputs_are_noise():
    for path in (".venv/bin/python", "venv/lib/x.py", "src/pkg/__pycache__/m.cpython-311.pyc", ".tox/py311/x",
                 "node_modules/a/index.js", "build/lib/x.py", "dist/x.whl", "target/debug/app", ".pytest_cache/v",
                 "src/mypkg.egg-info/PKG-INFO", ".mypy_cache/3.11/x.json", "module.pyc"):
        assert is_noise(path), path


def test_the_users_new_files_are_work():
    for path in ("calc.py", "src/build/helpers.py", "docs/venv.md", "notes/dist.txt", "tests/test_new.py"):
        assert not is_noise(path), path


def test_a_detected_environment_with_any_name_is_noise():
    assert is_noise("py-env/bin/python", ["py-env"]) and not is_noise("py-envy/x", ["py-env"])


def test_only_untracked_entries_are_set_aside():
    entries = [("??", ".venv/bin/python"), (" M", "build/keep.py"), ("??", "new.py"), ("??", "__pycache__/x.pyc"),
               ("M ", "calc.py")]
    assert user_changes(entries) == {"build/keep.py", "new.py", "calc.py"}
