"""What each runner says about a failing test, read from its real output: the message, the test's own line,
and the stack deepest-last (run_tests then keeps the project's frames). Recorded from real runs."""

from __future__ import annotations

from pathlib import Path

from gptoss_agent.tools.test_summaries import parse_summary, strip_ansi

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "runner_output"


def summary(name: str, runner: str):
    return parse_summary((RECORDED / name).read_text(), prefer=runner)


def test_go_json_an_errorf_names_the_test_file_line_and_message():
    detail = summary("go_json.txt", "go").details["example.com/calc.TestAdd"]
    assert detail.message == "Add(2, 3) = -1, want 5"
    assert detail.test_frame[:2] == ("example.com/calc/calc_test.go", 8)  # package import path + file


def test_go_json_a_panic_gives_the_test_frame_and_the_code_frame():
    found = summary("go_json_panic.txt", "go")
    detail = found.details["example.com/calc/stack.TestPopEmpty"]
    assert detail.message == "panic: runtime error: index out of range [-1]"
    assert detail.test_frame[:2] == ("/tmp/h5g/stack/stack_test.go", 7)
    project = [frame[:2] for frame in detail.frames if frame[0].startswith("/tmp/h5g/")]
    assert project == [("/tmp/h5g/stack/stack_test.go", 7), ("/tmp/h5g/stack/stack.go", 7)]  # deepest last


def test_cargo_backtrace_gives_the_test_line_and_the_message():
    detail = summary("cargo.txt", "cargo").details["tests::adds"]
    assert detail.message.splitlines()[0] == "assertion `left == right` failed"
    assert detail.test_frame[:2] == ("src/lib.rs", 7)
    assert not any("{{closure}}" in frame[2] for frame in detail.frames)


def test_cargo_without_a_backtrace_and_in_the_old_panic_format():
    new = ("test tests::adds ... FAILED\n\nfailures:\n\n---- tests::adds stdout ----\n\n"
           "thread 'tests::adds' panicked at src/lib.rs:9:5:\nassertion failed: add(2, 3) == 5\n"
           "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\n\nfailures:\n"
           "    tests::adds\n\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n")
    old = new.replace("panicked at src/lib.rs:9:5:\nassertion failed: add(2, 3) == 5\n",
                      "panicked at 'assertion failed: add(2, 3) == 5', src/lib.rs:9:5\n")
    for text in (new, old):
        detail = parse_summary(text, prefer="cargo").details["tests::adds"]
        assert detail.message == "assertion failed: add(2, 3) == 5"
        assert detail.frames == [("src/lib.rs", 9, "")]


def test_node_tap_gives_the_error_its_kind_and_the_test_line():
    detail = summary("node_tap.txt", "node").details["subtracts"]
    assert detail.message.startswith("AssertionError: Expected values to be strictly equal")
    assert detail.test_frame[:2] == ("/tmp/h7probe/node/math.test.js", 4)


def test_unittest_blocks_give_each_test_its_message_and_frames_doctests_too():
    found = summary("unittest_doctest.txt", "unittest")
    assert set(found.details) == set(found.failing) and len(found.failing) == 4
    wrong = found.details["test_shapes.Double.test_wrong"]
    assert wrong.message == "AssertionError: 10 != 11" and wrong.test_frame[1:] == (18, "test_wrong")
    half = found.details["test_shapes.Double.test_half"]
    assert half.frames[-1][0].endswith("/shapes.py") and half.test_frame[2] == "test_half"
    doctest = found.details["shapes.double"]
    assert "Failed example:" in doctest.message and "Got:" in doctest.message and "-" * 70 not in doctest.message
    assert doctest.test_frame[1] == 5  # the failing example's line


def test_junit_escape_residue_is_stripped():
    assert strip_ansi("#x1B[0m#x1B[91m- 2 minute#x1B[39;49;00m") == "- 2 minute"


def test_a_hostile_stack_is_bounded():
    frames = "".join(f"  File \"/x/f{i}.py\", line {i}, in f{i}\n    f()\n" for i in range(10_000))
    text = (f"FAIL: test_x (m.C.test_x)\n{'-' * 70}\nTraceback (most recent call last):\n{frames}"
            f"RecursionError: too deep\n\n{'-' * 70}\nRan 1 test in 0.1s\n\nFAILED (failures=1)\n")
    detail = parse_summary(text, prefer="unittest").details["m.C.test_x"]
    assert len(detail.frames) <= 64 and detail.message.startswith("RecursionError")


def test_hostile_failure_blocks_are_read_in_linear_time():
    import time

    tap = ("not ok 1 - a\n  ---\n  error: x\n" * 30_000) + "# tests 1\n# pass 0\n# fail 1\n"  # no block ever ends
    cargo = ("test a ... FAILED\n---- a stdout ----\n" + "thread 'a' panicked at 'x\n" * 30_000
             + "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n")
    unittest = (f"FAIL: t (m.C.t)\n{'-' * 70}\n" + "  File \"x\", line 1, in t\n" * 100) * 300 + \
        "\nRan 1 test in 0.1s\n\nFAILED (failures=1)\n"
    started = time.monotonic()
    for text, runner in ((tap, "node"), (cargo, "cargo"), (unittest, "unittest")):
        assert parse_summary(text, prefer=runner).failing
    assert time.monotonic() - started < 5


def test_jest_and_vitest_blocks_give_the_message_and_the_test_line_without_the_source_excerpt():
    jest = summary("jest.txt", "jest").details["sum › adds 1 + 2 to equal 3"]
    assert jest.message.splitlines()[0] == "expect(received).toBe(expected) // Object.is equality"
    assert "Received: -1" in jest.message and "|" not in jest.message  # the code frame is not the message
    assert jest.test_frame[:2] == ("src/sum.test.js", 5)
    vitest = summary("vitest.txt", "vitest").details["src/sum.test.ts > sum > adds 1 + 2"]
    assert vitest.message.startswith("AssertionError: expected -1 to be 3") and "5|" not in vitest.message
    assert vitest.test_frame[:2] == ("src/sum.test.ts", 5)
