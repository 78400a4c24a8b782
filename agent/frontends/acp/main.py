"""The `gptoss-agent acp` process: protocol-only standard output, the instant handshake, then the SDK.

Standard output carries protocol messages only: the protocol writes to a
private copy of descriptor 1, and descriptor 1 itself is pointed at standard
error, so a stray print or a native library's log cannot corrupt the stream.
Likewise it reads a private copy of descriptor 0, and descriptor 0 becomes
/dev/null: no child process (a probe, git, a command) can read the editor's
messages.
The editor's `initialize` is answered before the SDK (a second of imports) and
the model (seconds to minutes) load; both load after it.
"""

from __future__ import annotations

import logging
import os
import sys

from gptoss_agent.agent.runtime import RunOptions


def serve(options: RunOptions) -> int:
    """Serve one editor on stdin/stdout until it closes the connection."""
    from gptoss_agent.agent.frontends.acp.wire import handshake, read_first_line

    protocol_in, protocol_out = os.dup(0), os.dup(1)  # the protocol's own descriptors (close-on-exec)
    os.dup2(2, 1)  # descriptor 1 is standard error from now on: nothing else can reach the protocol stream
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # and no child process (a probe, git, a command) can read the editor's messages
    os.close(null)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="gptoss-agent acp: %(message)s")
    first, rest = read_first_line(protocol_in)
    answered = handshake(first)
    loader = None
    if answered is not None:
        reply, capabilities = answered
        _write_all(protocol_out, reply)
        from gptoss_agent.agent.frontends.acp.model import ModelLoader

        loader = ModelLoader(options)
        loader.start()  # the model loads while the SDK imports
        first = b""
    from gptoss_agent.agent.frontends.acp.server import run

    return run(options, protocol_in, protocol_out, pending=first + rest, loader=loader,
               capabilities=answered[1] if answered is not None else None)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
