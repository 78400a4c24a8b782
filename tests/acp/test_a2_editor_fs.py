"""A2 findings 1, 2, 5, 10 through the SDK's client side: when the editor's file system may be trusted with a path.

The editor resolves a path again after our checks and follows links. So it is
asked only while commands run on the copy-on-write overlay and none runs in
the tree (the Landlock fallback writes the tree directly: the disk is used,
and the user is told once why); an editor write that landed somewhere other
than the regular file we checked fails loudly; a two-file patch the editor
half refuses is taken back; the permission dialog's diff comes from the same
source as the edit.
"""

from __future__ import annotations

import os
import threading

import pytest

from gptoss_agent.tools.editor_files import BUSY_TREE, EditorFiles, EditorWorkspace, tree_lock
from tests.acp.harness import RecordingClient, prompt_once, run
from tests.fixtures.repos import FIX_PATCH, call, final, write_replay

pytest.importorskip("acp")


def finished(client: RecordingClient) -> list:
    return [u for _, u in client.updates if u.session_update == "tool_call_update" and u.status != "in_progress"]


def content_text(update) -> str:
    return "\n".join(getattr(getattr(c, "content", None), "text", "") or "" for c in update.content or [])


def landlock_available() -> bool:
    from gptoss_agent.tools.sandbox import detect

    try:
        return detect("landlock").mechanism == "landlock"
    except Exception:  # noqa: BLE001 - no Landlock here: the test has nothing to show
        return False


@pytest.mark.skipif(not landlock_available(), reason="the Landlock fallback is not available here")
def test_on_the_landlock_fallback_the_editor_never_resolves_a_path_and_the_user_is_told_once(repo, tmp_path, state):
    replay = write_replay(tmp_path / "replay.json", [call("repo_browser.open_file", {"path": "calc.py"}),
                                                     call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                                                     call("repo_browser.open_file", {"path": "calc.py"}),
                                                     final("Done.")])
    calc = f"{repo}/calc.py"
    client = RecordingClient(buffers={calc: "def add(a, b):\n    return a - b  # unsaved\n"})
    answer = run(prompt_once(client, repo, replay, "--approval", "full-auto", "--sandbox", "landlock", fs=True,
                             env=state))
    assert answer.stop_reason == "end_turn"
    assert client.reads == [] and client.writes == []  # a command could swap a link under the editor: disk only
    assert "return a + b" in (repo / "calc.py").read_text()
    results = finished(client)
    assert "# unsaved" not in content_text(results[0]) and "return a - b" in content_text(results[0])
    thoughts = client.text("agent_thought_chunk")
    assert thoughts.count("copy-on-write overlay") == 1, thoughts  # said once, with the reason


def test_an_editor_write_that_lands_through_a_planted_link_fails_loudly(repo, tmp_path, state):
    """What the race did: between our check and the editor's write, the path became a link to a file outside."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    replay = write_replay(tmp_path / "replay.json", [call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                                                     final("Done.")])

    class SwappingEditor(RecordingClient):
        async def write_text_file(self, content, path, session_id, **kwargs):
            os.unlink(path)
            os.symlink(victim, path)  # a concurrent command planted it just now
            return await super().write_text_file(content, path, session_id, **kwargs)  # the editor follows it

    client = SwappingEditor()
    answer = run(prompt_once(client, repo, replay, "--approval", "full-auto", fs=True, env=state))
    assert answer.stop_reason == "end_turn"
    result = finished(client)[0]
    assert result.status == "failed"
    text = content_text(result)
    assert "outside the repository" in text and "check it" in text, text
    assert "every file was restored" not in text or "no longer a regular file" in text


def test_editor_operations_wait_for_no_command_and_commands_hold_the_tree(tmp_path):
    """Unit: while another session's command holds the tree, a read and a write go to the disk, link-free."""
    root = tmp_path / "tree"
    root.mkdir()
    (root / "a.py").write_text("disk\n")
    asked: list[str] = []
    told: list[str] = []
    files = EditorFiles(read_text=lambda path: asked.append(path) or "buffer\n",
                        write_text=lambda path, text: asked.append(path), notify=told.append)
    held, release = threading.Event(), threading.Event()

    def command():
        with tree_lock(root):
            held.set()
            release.wait(10)

    worker = threading.Thread(target=command)
    worker.start()
    held.wait(10)
    try:
        with EditorWorkspace(root, files) as space, space.editor_turn() as editor:
            assert editor is False
            assert space.read("a.py")[0] == b"disk\n"
            space.write("a.py", b"new\n")
    finally:
        release.set()
        worker.join()
    assert asked == [] and told == [BUSY_TREE] and (root / "a.py").read_text() == "new\n"
    with EditorWorkspace(root, files) as space, space.editor_turn() as editor:  # no command: the editor again
        assert editor is True and space.read("a.py")[0] == b"buffer\n"
    assert asked == [f"{root.resolve()}/a.py"]


def test_a_two_file_patch_the_editor_half_refuses_is_taken_back_on_disk_and_says_what_the_buffer_holds(
        repo, tmp_path, state):
    (repo / "b.py").write_text("b = 1\n")
    (repo / "a.py").write_text("a = 1\n")
    patch = ("*** Begin Patch\n*** Update File: a.py\n@@\n-a = 1\n+a = 2\n*** Update File: b.py\n@@\n-b = 1\n+b = 2\n"
             "*** End Patch")
    replay = write_replay(tmp_path / "replay.json", [call("repo_browser.apply_patch", {"patch": patch}),
                                                     final("Done.")])

    class HalfEditor(RecordingClient):
        async def write_text_file(self, content, path, session_id, **kwargs):
            self.writes.append((path, content))
            if len(self.writes) > 1:
                from acp import RequestError
                raise RequestError(-32603, "buffer is read-only")
            self.buffers[path] = content  # took it into the buffer, unsaved
            from acp.schema import WriteTextFileResponse
            return WriteTextFileResponse()

    client = HalfEditor()
    answer = run(prompt_once(client, repo, replay, "--approval", "full-auto", fs=True, env=state))
    assert answer.stop_reason == "end_turn"
    assert (repo / "a.py").read_text() == "a = 1\n" and (repo / "b.py").read_text() == "b = 1\n"  # all or nothing
    text = content_text(finished(client)[0])
    assert "every file on disk was restored" in text and "buffer still shows the edit" in text and "a.py" in text


def test_the_permission_diff_comes_from_the_buffer_the_edit_will_change(repo, tmp_path, state):
    replay = write_replay(tmp_path / "replay.json", [call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                                                     final("Done.")])
    calc = f"{repo}/calc.py"
    buffer = (repo / "calc.py").read_text() + "import os  # unsaved, only in the editor\n"
    client = RecordingClient(answers=["allow_once"], buffers={calc: buffer})
    answer = run(prompt_once(client, repo, replay, fs=True, env=state))
    assert answer.stop_reason == "end_turn"
    diff = client.permissions[0].content[0]
    assert "import os  # unsaved" in diff.old_text and "import os  # unsaved" in diff.new_text
    assert client.writes[-1][1] == diff.new_text  # what was approved is what was written


def test_a_buffer_changed_after_the_dialog_is_not_written_with_text_nobody_approved(repo, tmp_path, state):
    replay = write_replay(tmp_path / "replay.json", [call("repo_browser.apply_patch", {"patch": FIX_PATCH}),
                                                     final("Done.")])
    calc = f"{repo}/calc.py"

    class TypingEditor(RecordingClient):
        async def request_permission(self, options, session_id, tool_call, **kwargs):
            self.buffers[calc] += "# typed while the dialog was open\n"  # the user kept editing
            return await super().request_permission(options, session_id, tool_call, **kwargs)

    client = TypingEditor(answers=["allow_once"], buffers={calc: (repo / "calc.py").read_text()})
    answer = run(prompt_once(client, repo, replay, fs=True, env=state))
    assert answer.stop_reason == "end_turn"
    result = finished(client)[0]
    assert result.status == "failed" and "changed since you approved" in content_text(result)
    assert client.writes == [] and "return a - b" in (repo / "calc.py").read_text()  # nothing written
