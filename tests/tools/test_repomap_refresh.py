"""The repo map re-ranked during a run: the real loop (replay backend), real patch and test tools, a real repo."""

from __future__ import annotations

import pytest

from gptoss_agent.agent.model.backends.replay import ReplayBackend
from gptoss_agent.agent.loop import Agent
from tests.fixtures.repos import call, final, git, make_calc_repo
from gptoss_agent.tools.catalog import default_registry
from gptoss_agent.tools.context import ToolContext
from gptoss_agent.tools.repomap_refresh import files_pointed_at, map_refresher
from gptoss_agent.tools.sandbox import Sandbox

SHAPES = {
    "geometry/shapes.py": "class Shape:\n    def area(self):\n        return 0\n\n\nclass Square(Shape):\n"
                          "    def __init__(self, side):\n        self.side = side\n",
    "geometry/render.py": "from geometry.shapes import Square\n\n\ndef draw(shape):\n    return str(Square(1))\n",
    "billing/invoice.py": "class Invoice:\n    def total(self):\n        return 0\n",
    "billing/tax.py": "from billing.invoice import Invoice\n\n\ndef vat(invoice):\n    return Invoice().total()\n",
}
PATCH_SHAPES = ("*** Begin Patch\n*** Update File: geometry/shapes.py\n class Shape:\n     def area(self):\n"
                "-        return 0\n+        return 1\n*** End Patch")


@pytest.fixture
def repo(tmp_path):
    root = make_calc_repo(tmp_path / "project")
    for name, text in SHAPES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "shapes and billing")
    return root


def run_agent(codec, repo, completions, budget=400):
    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo), count_tokens=codec.count)
    agent = Agent(ReplayBackend(completions, codec), codec, default_registry(), ctx, sink=lambda e: None)
    agent.map_refresher = map_refresher(repo, budget, codec.count)
    agent.start(instructions="Fix things.", reasoning="low")
    result = agent.run("make Shape.area return 1")
    notices = [codec.decode(s.tokens) for s in agent.conversation.segments if s.kind == "notice"]
    return result, [n for n in notices if "repository map again" in n]


def test_an_edit_re_ranks_the_map_around_the_edited_file_once(codec, repo):
    result, maps = run_agent(codec, repo, [
        call("repo_browser.apply_patch", {"patch": PATCH_SHAPES}),
        call("repo_browser.open_file", {"path": "geometry/shapes.py"}),
        call("repo_browser.apply_patch", {"patch": PATCH_SHAPES.replace("return 0", "return 9")
                                          .replace("return 1", "return 0").replace("return 9", "return 1")}),
        final("done")])
    assert result.status == "completed"
    assert len(maps) == 1  # the second edit of the same file changes nothing worth a new notice
    block = maps[0].split("<<<repository-content: repo map\n", 1)[1]
    files = [line[:-1] for line in block.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert files[0] == "geometry/shapes.py"
    assert files[1] == "geometry/render.py"  # its neighbour, before the unrelated billing code
    assert files.index("geometry/render.py") < files.index("billing/invoice.py")


def test_a_failing_test_points_the_map_at_its_files(codec, repo):
    result, maps = run_agent(codec, repo, [call("functions.run_tests", {}), final("seen")])
    assert result.status == "completed"
    assert len(maps) == 1
    block = maps[0].split("<<<repository-content: repo map\n", 1)[1]
    assert block.startswith(("calc.py:", "tests/test_calc.py:"))


def test_reading_files_does_not_re_rank(codec, repo):
    _, maps = run_agent(codec, repo, [call("repo_browser.open_file", {"path": "billing/tax.py"}), final("ok")])
    assert maps == []


def test_pointed_files_come_from_the_tool_data_and_stay_inside_mappable_source():
    data = {"failures": [{"location": "src/app.py:12", "test_location": "tests/test_app.py:40"},
                         {"location": "README.md:1"}, "junk"],
            "failing": ["tests/test_more.py::test_x", 7]}
    assert files_pointed_at("functions.run_tests", data) == ["src/app.py", "tests/test_app.py",
                                                             "tests/test_more.py"]
    assert files_pointed_at("repo_browser.apply_patch", {"files": ["a.go", 3, "notes.txt"]}) == ["a.go"]
    assert files_pointed_at("repo_browser.open_file", {"files": ["a.go"]}) == []
