"""Device files: a command reaches the harmless ones, never the user's terminals.

An attack on the Landlock fallback read /dev/pts/N (what the user typed in
another terminal); Landlock now allows a fixed list of device files instead of
/dev wholesale. bwrap gives the command a /dev of its own.
"""

from __future__ import annotations

import os


def test_the_users_terminal_cannot_be_read_or_written(make_sandbox):
    master, slave = os.openpty()
    try:
        name = os.ttyname(slave)
        os.write(master, b"typed-by-the-user\n")
        code = (f"import os\nfor flags in (os.O_RDONLY | os.O_NONBLOCK, os.O_WRONLY | os.O_NONBLOCK):\n"
                f"    try:\n        fd = os.open({name!r}, flags)\n        print('OPENED', fd)\n"
                f"    except OSError as e:\n        print('REFUSED', e.errno)\n"
                "try:\n    print('LISTED', os.listdir('/dev/pts'))\nexcept OSError as e:\n    print('NOLIST', e.errno)")
        result = make_sandbox().run(["python3", "-c", code])
        assert "OPENED" not in result.output, result.output
        assert result.output.count("REFUSED") == 2, result.output
    finally:
        os.close(master)
        os.close(slave)


_FULL = ("import os, errno\ntry:\n    os.write(os.open('/dev/full', os.O_WRONLY), b'x')\n"
         "except OSError as e:\n    print(errno.errorcode[e.errno])")


def test_the_usual_device_files_still_work(make_sandbox):
    result = make_sandbox().run(["sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c && "
                                             "head -c 8 /dev/urandom | wc -c && head -c 8 /dev/random | wc -c && "
                                             'python3 -c "$0" && echo fine', _FULL])
    assert result.ok and result.output.split() == ["4", "8", "8", "ENOSPC", "fine"], result.output


def test_the_hosts_shared_memory_folder_is_not_reachable(make_sandbox, tmp_path):
    marker = f"gptoss-shm-{os.getpid()}"
    path = f"/dev/shm/{marker}"
    with open(path, "w") as handle:
        handle.write("host shared memory")
    try:
        result = make_sandbox().run(["sh", "-c", f"cat {path} 2>&1; echo overwritten > {path} 2>&1; echo end"])
        assert "host shared memory" not in result.output
        with open(path) as handle:
            assert handle.read() == "host shared memory"
    finally:
        os.unlink(path)
