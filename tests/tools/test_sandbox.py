"""Adversarial tests: each asserts that nothing escaped the sandbox.

Run for every mechanism this machine has (bubblewrap, and the Landlock +
seccomp fallback used where bwrap is missing); a mechanism the kernel lacks is
skipped with the reason.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from gptoss_agent.tools.sandbox import Limits, Sandbox, landlock_isolation

PY = "python3"


def run(sandbox, code: str, **kwargs):
    return sandbox.run([PY, "-c", code], **kwargs)


@pytest.fixture
def sandbox(repo, mechanism):
    return Sandbox(repo, mode=mechanism, limits=Limits(timeout_s=20, output_bytes=4000))


def test_tcp_to_a_server_on_loopback_outside_fails_and_the_server_sees_nothing(sandbox):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    seen = []

    def accept():
        try:
            seen.append(server.accept())
        except OSError:
            pass

    watcher = threading.Thread(target=accept)
    watcher.start()
    result = run(sandbox, f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2); print('CONNECTED')")
    watcher.join()
    server.close()
    assert "CONNECTED" not in result.output and result.exit_code != 0
    assert seen == []


def test_udp_and_dns_fail(sandbox):
    result = run(sandbox, "import socket\n"
                          "try:\n    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('1.1.1.1', 53)); print('SENT')\n"
                          "except OSError as e: print('udp refused', e)\n"
                          "try:\n    socket.getaddrinfo('example.com', 80); print('RESOLVED')\n"
                          "except OSError as e: print('dns refused', e)\n")
    assert "SENT" not in result.output and "RESOLVED" not in result.output


def test_unix_socket_planted_in_home_or_run_is_unreachable(sandbox, tmp_path):
    path = Path(os.environ.get("HOME", "/root")) / f".gptoss-test-{os.getpid()}.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    try:
        result = run(sandbox, f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({str(path)!r}); print('CONNECTED')")
        assert "CONNECTED" not in result.output and result.exit_code != 0
    finally:
        server.close()
        path.unlink()


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink", "hardlink"])
def test_writes_outside_the_workspace_fail_and_the_target_is_unchanged(sandbox, repo, tmp_path, how):
    target = tmp_path / "outside.txt"
    target.write_text("original")
    if how == "dotdot":
        path = os.path.relpath(target, repo)
    elif how == "absolute":
        path = str(target)
    elif how == "symlink":
        os.symlink(target, repo / "link.txt")
        path = "link.txt"
    else:
        try:
            os.link(target, repo / "hard.txt")
        except OSError:
            pytest.skip("hard links across these folders are not possible here")
        path = "hard.txt"
    run(sandbox, f"open({path!r}, 'w').write('pwned')")
    if how == "hardlink":
        # A hard link made from outside shares the inode; the sandbox cannot create one itself:
        result = run(sandbox, f"import os; os.link({str(target)!r}, 'mine.txt'); print('LINKED')")
        assert "LINKED" not in result.output
        return
    assert target.read_text() == "original"


@pytest.mark.parametrize("name", ["config", "hooks/pre-commit"])
def test_writing_into_dot_git_from_a_command_does_not_stick(sandbox, repo, name):
    before = (repo / ".git" / name).read_bytes() if (repo / ".git" / name).exists() else None
    result = sandbox.run(["sh", "-c", f"echo '[core] hooksPath=/tmp/evil' >> .git/{name}"])
    after = (repo / ".git" / name).read_bytes() if (repo / ".git" / name).exists() else None
    assert after == before
    if sandbox.mechanism == "landlock" and not landlock_isolation()["readonly_git"]:
        assert any(".git" in note for note in result.notes)  # restored after the fact, and said so


def test_home_secrets_are_invisible_even_through_a_symlink_in_the_repo(sandbox, repo):
    home = Path(os.environ.get("HOME", "/root"))
    secret_dir = home / f".ssh-gptoss-test-{os.getpid()}"
    secret_dir.mkdir()
    (secret_dir / "id_test").write_text("PRIVATE KEY")
    (home / f".env-gptoss-{os.getpid()}").write_text("TOKEN=abc")
    os.symlink(secret_dir / "id_test", repo / "innocent.txt")
    try:
        result = sandbox.run(["sh", "-c", f"cat innocent.txt; cat {secret_dir}/id_test; cat ~/.env-gptoss-{os.getpid()}"])
        assert "PRIVATE KEY" not in result.output and "TOKEN=abc" not in result.output
    finally:
        (secret_dir / "id_test").unlink()
        secret_dir.rmdir()
        (home / f".env-gptoss-{os.getpid()}").unlink()


def test_secret_environment_variables_are_absent(sandbox, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
    result = sandbox.run(["env"])
    assert "sk-secret" not in result.output and "ghp_secret" not in result.output and "SSH_AUTH_SOCK" not in result.output


def test_sleep_is_killed_at_the_timeout(sandbox):
    started = time.monotonic()
    result = sandbox.run(["sleep", "1000"], timeout_s=1)
    assert result.timed_out and result.exit_code is None and time.monotonic() - started < 5


def test_infinite_output_is_capped_head_and_tail(sandbox):
    result = sandbox.run(["sh", "-c", "yes 0123456789"], timeout_s=2)
    assert result.timed_out and result.omitted_bytes > 0
    assert "bytes omitted" in result.output and len(result.output) < 6000


def test_cpu_spin_is_stopped_by_the_cpu_limit(repo, mechanism):
    sandbox = Sandbox(repo, mode=mechanism, limits=Limits(timeout_s=30, cpu_s=1))
    started = time.monotonic()
    result = run(sandbox, "while True: pass")
    assert result.exit_code != 0 and time.monotonic() - started < 15


def test_memory_hog_is_stopped(repo, mechanism):
    sandbox = Sandbox(repo, mode=mechanism, limits=Limits(timeout_s=30, address_space_bytes=512 * 2**20))
    result = run(sandbox, "x = bytearray(2 * 1024**3); print('ALLOCATED')")
    assert "ALLOCATED" not in result.output and result.exit_code != 0


def test_oversize_file_is_stopped(repo, mechanism):
    sandbox = Sandbox(repo, mode=mechanism, limits=Limits(timeout_s=30, file_size_bytes=1 * 2**20))
    result = run(sandbox, "open('big.bin', 'wb').write(b'0' * (5 * 2**20)); print('WROTE')")
    assert "WROTE" not in result.output
    assert (repo / "big.bin").stat().st_size <= 2**20


def test_fork_bomb_is_contained(repo, mechanism):
    sandbox = Sandbox(repo, mode=mechanism, limits=Limits(timeout_s=10, processes=64))
    started = time.monotonic()
    result = sandbox.run(["sh", "-c", "bomb() { bomb | bomb & }; bomb; sleep 2; echo done"])
    assert time.monotonic() - started < 20
    assert result.exit_code is not None or result.timed_out


def test_setsid_and_nohup_children_do_not_survive_a_timeout(sandbox, repo):
    marker = f"gptoss-survivor-{os.getpid()}"
    sandbox.run(["sh", "-c", f"setsid sh -c 'exec -a {marker} sleep 300' & nohup sh -c 'exec -a {marker} sleep 300' & sleep 100"],
                timeout_s=1)
    time.sleep(0.5)
    alive = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).startswith(marker)]
    assert alive == []


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_ordinary_work_still_succeeds(sandbox, repo):
    result = sandbox.run(["sh", "-c", "python3 -c 'print(6*7)' && echo made > new.txt && git status --short"])
    assert result.ok and "42" in result.output and (repo / "new.txt").read_text() == "made\n"


def test_properties_say_when_the_sandbox_is_off_or_missing():
    from gptoss_agent.tools.sandbox import sandbox_properties

    assert [p.holds for p in sandbox_properties("none")] == [False]
    assert [p.holds for p in sandbox_properties(None)] == [False]


def test_the_landlock_probe_tells_the_truth(repo, mechanism):
    """What doctor reports for the fallback (from the launcher's probe) is what a command meets."""
    if mechanism != "landlock":
        pytest.skip("the probe is the Landlock launcher's")
    found = landlock_isolation()
    sandbox = Sandbox(repo, mode="landlock", limits=Limits(timeout_s=20))
    result = sandbox.run(["sh", "-c", "ls /proc | grep -c '^[0-9]'; echo x >> .git/config 2>&1 || echo REFUSED"])
    assert (int(result.output.split()[0]) < 10) is found["fresh_proc"]
    assert ("REFUSED" in result.output) is found["readonly_git"]
