"""LINE/1 server, model: asyncio streams (coroutines on an event loop).

Blocks: only the event loop, in its selector (epoll on Linux, kqueue on macOS;
on Windows the proactor loop waits on IOCP completions instead). Each client
is a coroutine that reads as if blocking: `await reader.readuntil()` suspends
it and lets the loop run others. Same single-threaded multiplexing as
selectors_server.py, with the buffering, flow control (drain) and callbacks
written by the library.
Scales: to tens of thousands of clients.
Needs: asyncio (Linux, macOS, Windows).
"""
import asyncio
import socket

from lineproto import MAX_LINE, listen, reply, run


async def handle(reader, writer):
    try:
        # asyncio turns Nagle off only on sockets it made itself; this one comes from
        # lineproto.listen(), so do it here, or replies to pipelined lines wait for ACKs (~40 ms)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            line = await reader.readuntil(b"\n")
            writer.write(reply(line[:-1]))
            await writer.drain()                 # waits only if the client is not reading
    except asyncio.IncompleteReadError:         # EOF; a partial line gets no reply
        pass
    except (asyncio.LimitOverrunError, OSError):   # line over MAX_LINE, a reset, a dead socket
        pass
    except asyncio.CancelledError:              # the server is stopping; end quietly
        pass                                    # (Python 3.11 logs a bogus error otherwise)
    finally:
        writer.close()


async def serve():
    # limit: readuntil() fails once a line passes MAX_LINE bytes without its b"\n"
    server = await asyncio.start_server(handle, sock=listen(blocking=False), limit=MAX_LINE)
    async with server:
        await server.serve_forever()


def main():
    asyncio.run(serve())


if __name__ == "__main__":
    run(main)
