"""lab-4, the lesson `blocking-call`: one blocking call stalls every client.

Nothing to write here: read it, run `make lab-4 EXERCISE=blocking-call`, then
try the fix. This is an asyncio streams server, correct in every way but one:
before each reply it calls lookup(), which stands for a slow service (a
database, a web API, a file on a network disk) reached through a synchronous
library. It takes LOOKUP_SECONDS, and it blocks.

asyncio runs every client in ONE thread. While lookup() sleeps in
time.sleep(), the event loop is not running: no other client is read,
answered or even accepted. The grader's check robust.stall sends one line from
8 clients at the same moment: each reply should take 0.5 s, side by side;
here they come after 0.5, 1.0, 1.5, ... 4.0 s, one after another: the
iterative server of lab-1 again. The grader marks it "fails by design".

The fix, two ways (../README.md, "The lesson: one blocking call"):
  - if the library has an async version, await it: here `await asyncio.sleep()`
    instead of time.sleep() (the coroutine waits, the loop runs the others);
  - if it has none, run the blocking call in a thread of the loop's executor:
    `reply_line = await asyncio.get_running_loop().run_in_executor(None, lookup, line)`.
Either way the lesson then "fails": the check passes, the stall is gone.

Run it alone:  PORT=9000 python blocking_server.py   then two `nc localhost 9000`
"""

import asyncio
import os
import socket
import time

HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "9000"))
MAX_LINE = 64 * 1024
LOOKUP_SECONDS = 0.5   # what the slow service costs per line


def lookup(line: bytes) -> bytes:
    """The slow service, through a synchronous library: it blocks its thread."""
    time.sleep(LOOKUP_SECONDS)   # the blocking call: the whole event loop stops here
    return b"%d %s\n" % (len(line), line)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            line = await reader.readuntil(b"\n")
            writer.write(lookup(line[:-1]))
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        pass   # EOF, a line over MAX_LINE, a reset
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(handle, HOST, PORT, limit=MAX_LINE)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
