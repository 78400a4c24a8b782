"""Calls into native code that can panic, turned into ordinary, catchable errors.

openai-harmony and tiktoken are Rust extensions: a Rust panic surfaces in
Python as `pyo3_runtime.PanicException`, which derives from `BaseException`,
so `except Exception` lets it through and it ends the run with a raw
traceback. Every call that hands them untrusted input goes through `guarded`,
which turns a panic into `NativeCodeError` (an `Exception`, with a message a
person or the model can act on) and lets only a real interrupt pass.
"""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")

_PASS_THROUGH = (KeyboardInterrupt, SystemExit, GeneratorExit)


class NativeCodeError(RuntimeError):
    """A native library failed (panicked) on some input; the message says which call."""


def guarded(what: str, call: Callable[..., T], *args, **kwargs) -> T:
    """Run `call(*args, **kwargs)`; a panic becomes NativeCodeError naming `what`."""
    try:
        return call(*args, **kwargs)
    except _PASS_THROUGH:
        raise
    except Exception:  # an ordinary error is already catchable: leave its type alone
        raise
    except BaseException as exc:  # noqa: BLE001 - pyo3's PanicException is a BaseException
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise NativeCodeError(f"{what} failed inside native code ({type(exc).__name__}"
                              f"{': ' + detail if detail else ''})") from exc
