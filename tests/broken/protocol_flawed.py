"""A correct asyncio.Protocol LINE/1 server (2 s idle timeout, reads paused while
its output waits) with one switchable flaw, as flawed.py is for selectors.

Each tests/broken/protocol_<flaw>.py calls serve(flaw=...), so it differs from the
correct one in exactly one way, and the grader must fail exactly the check that
targets that flaw.
"""

import asyncio
import os
import time

FLAWS = {"none", "no_idle_timeout", "no_flow_control", "blocking_call"}
IDLE_TIMEOUT = 2.0
HIGH_WATER = 1024 * 1024


def reply(line: bytes) -> bytes:
    return b"%d %s\n" % (len(line), line)


class Line(asyncio.Protocol):
    flaw = "none"

    def connection_made(self, transport):
        self.transport, self.buf, self.timer = transport, b"", None
        transport.set_write_buffer_limits(high=HIGH_WATER)
        self.restart_timer()

    def restart_timer(self):
        if self.timer:
            self.timer.cancel()
        if self.flaw != "no_idle_timeout":  # the flaw: a silent client is kept forever
            self.timer = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self.transport.abort)

    def data_received(self, data):
        self.restart_timer()
        if self.flaw == "blocking_call":
            time.sleep(0.3)  # the flaw: a blocking call stops the whole event loop
        *lines, self.buf = (self.buf + data).split(b"\n")
        self.transport.write(b"".join(reply(line) for line in lines))

    def eof_received(self):
        return False

    def pause_writing(self):
        if self.flaw != "no_flow_control":  # the flaw: it reads on while replies pile up
            self.transport.pause_reading()

    def resume_writing(self):
        if self.flaw != "no_flow_control":
            self.transport.resume_reading()

    def connection_lost(self, exc):
        if self.timer:
            self.timer.cancel()


async def main(flaw: str) -> None:
    Line.flaw = flaw
    server = await asyncio.get_running_loop().create_server(
        Line, os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "9000")))
    async with server:
        await server.serve_forever()


def serve(flaw: str = "none") -> None:
    assert flaw in FLAWS, flaw
    asyncio.run(main(flaw))
