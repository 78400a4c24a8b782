"""Environment versus code, on real runner output (tests/fixtures/environment_runs, made by its capture.py:
real run_test_suite runs in the real sandbox)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gptoss_agent.tools.environment_problems import ProjectFacts, diagnose, project_facts

RUNS = Path(__file__).resolve().parents[1] / "fixtures" / "environment_runs"
PIP = "/work/project/.venv/bin/python -m pip install {}".format


def run(name: str, facts: ProjectFacts):
    data = json.loads((RUNS / f"{name}.json").read_text())
    failures = [(test_id, text) for test_id, text in data["failures"]]
    return diagnose(failures, data["output_tail"], runner=data["runner"], program=data["program"], facts=facts,
                    install=PIP)


def test_an_uninstalled_src_layout_is_the_environment_with_pip_install_e():
    diagnosis = run("src_not_installed", ProjectFacts(frozenset({"mypkg"}), "mypkg"))
    assert diagnosis.only_environment
    (problem,) = diagnosis.problems
    assert problem.kind == "project not installed"
    assert problem.command == PIP("-e .")
    assert "mypkg" in problem.message()


def test_unittest_import_failure_of_the_project_is_read_from_its_output_block():
    diagnosis = run("unittest_src_not_installed", ProjectFacts(frozenset({"shapes"}), "shapes"))
    assert diagnosis.only_environment and diagnosis.problems[0].kind == "project not installed"


def test_missing_dependencies_name_where_they_are_declared():
    facts = ProjectFacts(frozenset({"report"}), "report", {"tabulate": "", "frozendict": "extra:test"})
    diagnosis = run("missing_dependency", facts)
    assert diagnosis.only_environment
    assert sorted(p.command for p in diagnosis.problems) == [PIP("-e '.[test]'"), PIP("-e .")]
    assert {p.kind for p in diagnosis.problems} == {"missing dependency"}


def test_an_undeclared_missing_module_is_named_but_never_made_an_install_command():
    # the name comes from test output the repository controls: `pip install <it>` could install a typosquat
    diagnosis = run("missing_dependency", ProjectFacts(frozenset({"report"}), "report"))
    assert diagnosis.only_environment
    assert [p.command for p in diagnosis.problems] == ["", ""]
    assert "`tabulate`" in diagnosis.message() and "`frozendict`" in diagnosis.message()
    assert "does not declare it" in diagnosis.message() and "pip install" not in diagnosis.message()


def test_metadata_of_the_project_missing_is_environment_but_the_real_bug_stays_the_models():
    diagnosis = run("metadata_and_a_real_bug", ProjectFacts(frozenset({"calc_kit"}), "calc-kit"))
    assert not diagnosis.only_environment
    assert diagnosis.explained == {"tests/test_calc.py::test_version"}
    assert diagnosis.unexplained == {"tests/test_calc.py::test_add"}
    assert diagnosis.problems[0].command == PIP("-e .")


def test_pytest_missing_from_the_environment_is_the_runner_missing():
    diagnosis = run("pytest_missing", ProjectFacts(frozenset({"calc"}), "calc"))
    assert diagnosis.only_environment
    assert diagnosis.problems[0].kind == "test runner missing" and diagnosis.problems[0].command == PIP("pytest")


def test_a_test_that_needs_the_network_is_told_without_a_command():
    diagnosis = run("network", ProjectFacts(frozenset(), "fetch"))
    assert diagnosis.only_environment
    assert diagnosis.problems[0].kind == "network needed" and diagnosis.problems[0].command == ""


@pytest.mark.parametrize("name", ["code_bug", "typo_in_import"])
def test_code_failures_are_left_to_the_model(name):
    diagnosis = run(name, ProjectFacts(frozenset({"calc"}), "calc"))
    assert not diagnosis.problems and not diagnosis.only_environment and diagnosis.unexplained


def test_a_missing_submodule_of_the_project_is_code_not_environment():
    failures = [("tests/test_x.py::test_x", "E   ModuleNotFoundError: No module named 'calc.helpers'")]
    diagnosis = diagnose(failures, "", runner="pytest", program="python", facts=ProjectFacts(frozenset({"calc"})),
                         install=PIP)
    assert not diagnosis.problems


def test_a_runner_program_that_is_not_there():
    diagnosis = diagnose([], "bwrap: execvp go: No such file or directory\n", runner="go", program="go",
                         facts=ProjectFacts(), install=PIP)
    assert diagnosis.only_environment and diagnosis.problems[0].command == "apt install golang-go"


def test_project_facts_read_layout_name_and_declarations(tmp_path):
    (tmp_path / "src" / "mypkg").mkdir(parents=True)
    (tmp_path / "src" / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "tool.py").write_text("")
    (tmp_path / "setup.py").write_text("")
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'My_Pkg'\ndependencies = ['Requests>=2', 'attrs; python_version>\"3\"']\n"
        "[project.optional-dependencies]\ndev = ['hypothesis']\n")
    (tmp_path / "requirements-test.txt").write_text("# tools\n-e .\nfreezegun==1.0\n")
    facts = project_facts(tmp_path)
    assert facts.local_modules == {"mypkg", "tool"}
    assert facts.distribution == "my-pkg"
    assert facts.declared == {"requests": "", "attrs": "", "hypothesis": "extra:dev",
                              "freezegun": "file:requirements-test.txt"}


def test_project_facts_never_read_through_a_link(tmp_path):
    secret = tmp_path / "outside.toml"
    secret.write_text("[project]\nname = 'leaked-name'\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pyproject.toml").symlink_to(secret)
    assert project_facts(repo).distribution is None


def test_names_from_the_repository_cannot_inject_shell_syntax_into_the_command():
    failures = [("t::a", "E   ModuleNotFoundError: No module named 'evil'"),
                ("t::b", "E   ModuleNotFoundError: No module named 'other'")]
    facts = ProjectFacts(frozenset(), "x", {"evil": "extra:test]'; touch /tmp/pwned; '",
                                            "other": "file:req$(touch /tmp/pwned).txt"})
    diagnosis = diagnose(failures, "", runner="pytest", program="python", facts=facts, install=PIP)
    import shlex

    for problem in diagnosis.problems:
        words = shlex.split(problem.command)
        assert words[:5] == ["/work/project/.venv/bin/python", "-m", "pip", "install", words[4]]
        assert len(words) == 6  # the whole hostile name stays one argument


def test_hostile_extra_and_file_names_are_not_collected(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\n[project.optional-dependencies]\n\"a b; rm -rf ~\" = ['hypothesis']\n")
    (tmp_path / "requirements $(x).txt").write_text("freezegun\n")
    assert project_facts(tmp_path).declared == {}
