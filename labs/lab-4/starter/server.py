"""lab-4: the LINE/1 server on asyncio streams, in a few dozen lines.

asyncio runs the same single-threaded multiplexing as lab-3 (a selector:
epoll on Linux, kqueue on macOS), but the loop, the buffers and the flow
control are the library's: each client is a coroutine that reads as if it
were blocking. As written, handle() answers one recv() chunk and hangs up.
Fix it (YOUR CODE HERE), then run `make lab-4`. Read ../README.md first.

Run it alone:  PORT=9000 python server.py   then   nc localhost 9000
"""

import asyncio
import os

HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "9000"))
MAX_LINE = 64 * 1024  # the longest line LINE/1 allows (without its b"\n")


def reply(line: bytes) -> bytes:
    """LINE/1: the reply to one line (without its b'\\n') is b'<len> <line>\\n'."""
    return b"%d %s\n" % (len(line), line)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve one client: a reply per complete line, in order, until EOF; then close."""
    # YOUR CODE HERE: loop over `line = await reader.readuntil(b"\n")`, write
    # reply(line[:-1]) and `await writer.drain()` (it waits while the client
    # is not reading). End quietly on asyncio.IncompleteReadError (EOF; a
    # partial line gets no reply), LimitOverrunError and ConnectionError, and
    # always close the writer.
    data = await reader.read(65536)
    writer.write(reply(data.rstrip(b"\n")))
    writer.close()


async def main() -> None:
    # limit: readuntil() raises LimitOverrunError once a line passes MAX_LINE
    server = await asyncio.start_server(handle, HOST, PORT, limit=MAX_LINE)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
