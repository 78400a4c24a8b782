"""Nothing inside the sandbox holds privilege: the lockdown cannot be undone from inside, as root or not.

Each test runs a hostile command under both mechanisms and checks what a
user would notice on the host: no file written, no secret printed, no mount
changed, no process of theirs touched.
"""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path

import pytest

from gptoss_agent.tools.sandbox import seccomp


def _python(sandbox, code: str, **kwargs):
    return sandbox.run(["python3", "-c", code], **kwargs)


def test_every_capability_set_is_empty_and_no_new_privs_is_on(make_sandbox):
    result = make_sandbox().run(["grep", "-E", "^(Cap|NoNewPrivs|Seccomp)", "/proc/self/status"])
    fields = dict(line.split(":\t") for line in result.output.strip().splitlines())
    for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[name], 16) == 0, f"{name} = {fields[name]}"
    assert fields["NoNewPrivs"].strip() == "1" and fields["Seccomp"].strip() == "2"


def test_capsh_reports_no_capabilities(make_sandbox):
    result = make_sandbox().run(["sh", "-c", "command -v capsh >/dev/null || { echo NO_CAPSH; exit 0; }; capsh --print"])
    if "NO_CAPSH" in result.output:
        pytest.skip("capsh is not installed")
    current = next(line for line in result.output.splitlines() if line.startswith("Current"))
    assert "cap_" not in current.split("=", 1)[-1]


def test_root_outside_is_not_root_inside_under_bwrap(make_sandbox, mechanism):
    result = make_sandbox().run(["id", "-u"])
    if mechanism == "landlock" and os.getuid() == 0:
        pytest.skip("the Landlock fallback keeps uid 0 (without any capability): see README, Tools and the sandbox")
    assert result.ok and result.output.strip() != "0"


def test_remounting_the_root_read_write_does_not_let_a_command_write_to_the_host(make_sandbox):
    marker = Path("/") / f"gptoss-escape-{uuid.uuid4().hex}"
    result = make_sandbox().run(["sh", "-c", f"mount -o remount,bind,rw / ; mount -o remount,rw / ; "
                                             f"touch {marker} && echo WROTE"])
    assert not marker.exists() and "WROTE" not in result.output


def test_unmounting_home_does_not_reveal_what_it_hides(make_sandbox, fake_home):
    secret = fake_home / ".ssh" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-material\n")
    result = make_sandbox().run(["sh", "-c", f"umount -l {fake_home}; umount {fake_home}; cat {secret}"])
    assert "secret-key-material" not in result.output


def test_remounting_dot_git_writable_does_not_change_the_host_config(make_sandbox, sandbox_repo):
    config = sandbox_repo / ".git" / "config"
    before = config.read_bytes()
    make_sandbox().run(["sh", "-c", "mount -o remount,rw .git; mount -o remount,bind,rw .git; umount .git; "
                                    "printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' >> .git/config"])
    assert config.read_bytes() == before


@pytest.mark.parametrize("argv", [["unshare", "-r", "id"], ["unshare", "-U", "id"], ["unshare", "-m", "id"],
                                  ["unshare", "-n", "id"], ["unshare", "-p", "-f", "id"]])
def test_new_namespaces_cannot_be_created(make_sandbox, argv):
    result = make_sandbox().run(argv)
    assert result.exit_code != 0 and "uid=" not in result.output


def test_root_only_files_are_unreadable(make_sandbox):
    if not Path("/etc/shadow").exists():
        pytest.skip("no /etc/shadow on this machine")
    result = make_sandbox().run(["sh", "-c", "cat /etc/shadow /etc/gshadow 2>&1; echo END"])
    assert "root:" not in result.output and "END" in result.output


def test_ssh_host_keys_are_unreadable(make_sandbox):
    keys = sorted(Path("/etc/ssh").glob("ssh_host_*_key")) if Path("/etc/ssh").is_dir() else []
    if not keys:
        pytest.skip("no SSH host keys on this machine")
    result = make_sandbox().run(["sh", "-c", f"cat {keys[0]} 2>&1"])
    assert "PRIVATE KEY" not in result.output


def test_joining_the_hosts_namespaces_fails(make_sandbox):
    result = make_sandbox().run(["sh", "-c", "nsenter -t 1 -m -u -n -p true && echo JOINED"])
    assert "JOINED" not in result.output


def test_a_sandboxed_process_cannot_leave_its_pids_cgroup(make_sandbox):
    targets = [p for p in ("/sys/fs/cgroup/pids/cgroup.procs", "/sys/fs/cgroup/cgroup.procs") if Path(p).exists()]
    if not targets:
        pytest.skip("no cgroup file system here")
    result = make_sandbox().run(["sh", "-c", f"echo $$ > {targets[0]} && echo MOVED"])
    assert "MOVED" not in result.output


def test_kernel_tunables_cannot_be_written(make_sandbox):
    path = Path("/proc/sys/kernel/randomize_va_space")
    if not path.exists():
        pytest.skip("no randomize_va_space here")
    current = path.read_text().strip()  # write the value it already has: harmless even if it got through
    result = make_sandbox().run(["sh", "-c", f"echo {current} > {path} && echo WROTE; "
                                             "test -e /proc/sysrq-trigger && echo h > /proc/sysrq-trigger && echo SYSRQ"])
    assert "WROTE" not in result.output and "SYSRQ" not in result.output  # 'h' only prints help, if it got through


def test_raw_memory_and_kernel_log_devices_are_out_of_reach(make_sandbox):
    result = make_sandbox().run(["sh", "-c", "head -c 16 /dev/mem >/dev/null 2>&1 && echo MEM; "
                                             "head -c 16 /dev/kmsg >/dev/null 2>&1 && echo KMSG; "
                                             "test -c /dev/kmsg && echo x > /dev/kmsg 2>/dev/null && echo WKMSG; true"])
    assert "MEM" not in result.output and "WKMSG" not in result.output


# Each denied system call with harmless arguments: refused with EPERM (or ENOSYS for clone3).
_X86 = seccomp._X86_64 if os.uname().machine == "x86_64" else seccomp._AARCH64
_CALLS = {
    "keyctl": (0, 0), "add_key": (0, 0, 0, 0, 0), "request_key": (0, 0, 0, 0), "bpf": (0, 0, 0),
    "perf_event_open": (0, 0, -1, -1, 0), "userfaultfd": (0,), "io_uring_setup": (1, 0),
    "process_vm_readv": (1, 0, 0, 0, 0, 0), "kexec_load": (0, 0, 0, 0), "init_module": (0, 0, 0),
    "finit_module": (-1, 0, 0), "delete_module": (0, 0), "reboot": (0, 0, 0, 0), "swapon": (0, 0),
    "acct": (0,), "syslog": (3, 0, 0), "settimeofday": (0, 0), "open_by_handle_at": (-1, 0, 0),
    "name_to_handle_at": (-100, 0, 0, 0, 0), "fsopen": (0, 0), "open_tree": (-100, 0, 0), "pivot_root": (0, 0),
    "chroot": (0,), "setns": (-1, 0), "lookup_dcookie": (0, 0, 0), "fanotify_init": (0, 0), "vhangup": (),
    "umount2": (0, 0), "mount": (0, 0, 0, 0, 0), "quotactl": (0, 0, 0, 0), "mount_setattr": (-1, 0, 0, 0, 0),
}


_OUTCOMES: dict[str, dict[str, tuple[int, int]]] = {}


def _syscall_outcomes(make_sandbox, mechanism: str) -> dict[str, tuple[int, int]]:
    """Every call of _CALLS tried in one sandboxed process (one start per mechanism keeps the file fast)."""
    if mechanism not in _OUTCOMES:
        lines = ["import ctypes", "libc = ctypes.CDLL(None, use_errno=True)"]
        for name, args in sorted(_CALLS.items()):
            if name in _X86:
                call = ", ".join([str(_X86[name])] + [f"ctypes.c_long({a})" for a in args])
                lines.append(f"ctypes.set_errno(0); r = libc.syscall({call}); print({name!r}, r, ctypes.get_errno())")
        result = _python(make_sandbox(), "\n".join(lines))
        _OUTCOMES[mechanism] = {n: (int(r), int(e)) for n, r, e in (line.split() for line in result.output.splitlines())}
    return _OUTCOMES[mechanism]


@pytest.mark.parametrize("name", sorted(_CALLS))
def test_dangerous_system_calls_are_refused(make_sandbox, mechanism, name):
    if name not in _X86:
        pytest.skip(f"{name} does not exist on this architecture")
    assert _syscall_outcomes(make_sandbox, mechanism)[name] == (-1, errno.EPERM)


def test_clone3_answers_enosys_and_ordinary_forks_still_work(make_sandbox):
    code = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            f"r = libc.syscall({_X86['clone3']}, ctypes.c_long(0), ctypes.c_long(0))\n"
            "print('CLONE3', r, ctypes.get_errno())\n"
            "pid = os.fork()\nif pid == 0:\n    os._exit(7)\nprint('CHILD', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
            "import threading\nt = threading.Thread(target=print, args=('THREAD',))\nt.start()\nt.join()")
    result = _python(make_sandbox(), code)
    assert f"CLONE3 -1 {errno.ENOSYS}" in result.output and "CHILD 7" in result.output and "THREAD" in result.output


def test_personality_can_be_queried_but_not_changed(make_sandbox):
    code = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "print('QUERY', libc.personality(0xffffffff) >= 0)\n"
            "print('NORANDOM', libc.personality(0x0040000), ctypes.get_errno())")
    result = _python(make_sandbox(), code)
    assert "QUERY True" in result.output and f"NORANDOM -1 {errno.EPERM}" in result.output


def test_terminal_input_cannot_be_injected_with_tiocsti(make_sandbox):
    code = ("import os, fcntl, termios\n"
            "try:\n    master, slave = os.openpty()\nexcept OSError as e:\n    print('NOPTY', e.errno); raise SystemExit\n"
            "try:\n    fcntl.ioctl(slave, termios.TIOCSTI, b'x'); print('INJECTED')\n"
            "except OSError as e:\n    print('REFUSED', e.errno)")
    result = _python(make_sandbox(), code)
    assert "INJECTED" not in result.output and ("REFUSED" in result.output or "NOPTY" in result.output)


def test_clock_cannot_be_set(make_sandbox):
    code = ("import ctypes, time\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "class T(ctypes.Structure):\n    _fields_ = [('s', ctypes.c_long), ('ns', ctypes.c_long)]\n"
            "now = time.clock_gettime_ns(time.CLOCK_REALTIME)\n"
            "r = libc.clock_settime(0, ctypes.byref(T(now // 10**9, now % 10**9)))\nprint('SET', r)")
    result = _python(make_sandbox(), code)
    assert "SET -1" in result.output


@pytest.mark.parametrize("how", ["chmod u+s tool", "chmod 2755 tool", "install -m 4755 /bin/true tool2",
                                 "python3 -c \"import os; os.close(os.open('tool3', os.O_CREAT | os.O_WRONLY, 0o4755))\"",
                                 "python3 -c \"import os; os.chmod('tool', 0o6755)\""])
def test_no_setuid_or_setgid_program_can_be_left_in_the_repository(make_sandbox, sandbox_repo, how):
    """Run by root, a command's files are root's: a setuid bit would hand root to whoever runs them later."""
    (sandbox_repo / "tool").write_text("#!/bin/sh\nid\n")
    make_sandbox().run(["sh", "-c", how])
    for name in ("tool", "tool2", "tool3"):
        path = sandbox_repo / name
        if path.exists():
            assert path.stat().st_mode & 0o6000 == 0, f"{name} has mode {oct(path.stat().st_mode)}"


def test_ordinary_modes_still_work(make_sandbox, sandbox_repo):
    result = make_sandbox().run(["sh", "-c", "touch run.sh && chmod 755 run.sh && mkdir -p d && chmod 700 d && "
                                             "python3 -c \"open('w.txt', 'w').write('x')\" && echo OK"])
    assert "OK" in result.output and (sandbox_repo / "run.sh").stat().st_mode & 0o777 == 0o755


def test_a_sandbox_inside_the_sandbox_cannot_regain_privilege(make_sandbox):
    result = make_sandbox().run(["sh", "-c", "command -v bwrap >/dev/null || { echo NO_BWRAP; exit 0; }; "
                                             "bwrap --ro-bind / / --unshare-user --uid 0 --cap-add ALL id && echo NESTED"])
    if "NO_BWRAP" in result.output:
        pytest.skip("bwrap is not installed")
    assert "NESTED" not in result.output


def test_the_hosts_tmp_is_neither_readable_nor_writable(make_sandbox):
    planted = Path("/tmp") / f"gptoss-host-{uuid.uuid4().hex}"
    planted.write_text("host temp data")
    leak = Path("/tmp") / f"gptoss-leak-{uuid.uuid4().hex}"
    try:
        result = make_sandbox().run(["sh", "-c", f"cat {planted}; echo x > {leak}; true"])
        assert "host temp data" not in result.output and not leak.exists()
    finally:
        planted.unlink()
        leak.unlink(missing_ok=True)


def test_a_loader_preload_from_the_agents_environment_does_not_reach_commands(make_sandbox, monkeypatch, tmp_path):
    monkeypatch.setenv("LD_PRELOAD", str(tmp_path / "evil.so"))
    monkeypatch.setenv("PYTHONSTARTUP", str(tmp_path / "evil.py"))
    result = make_sandbox().run(["env"])
    assert "LD_PRELOAD" not in result.output and "PYTHONSTARTUP" not in result.output
