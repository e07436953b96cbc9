"""lab-4, exercise `protocol`: the LINE/1 server with callbacks (asyncio.Protocol).

No coroutine per client this time. The event loop makes one LineProtocol per
connection and calls its methods when something happens on that connection:
the course notes' 回调 (callbacks). Every method must return at once; nothing
here may block or wait. asyncio's streams (exercise `asyncio`) are built on
exactly these calls.

  connection_made(transport)  a client connected; `transport` writes and closes
  data_received(data)         some bytes arrived: part of a line, or many lines
  eof_received()              the client sent EOF (half-close)
  pause_writing()             the transport holds more than its high-water mark
                              of output: the client is not reading
  resume_writing()            that output drained below the low-water mark
  connection_lost(exc)        the connection is gone (closed, reset, aborted)

What the grader checks (`make lab-4 EXERCISE=protocol`):
- LINE/1: for every complete line L (up to b"\\n") the reply b"<len(L)> L\\n", in
  order, on the same connection. A line may come split over many
  data_received() calls, and one call may bring many lines.
- half-close: after EOF, every reply owed is sent, then the server closes.
- backpressure: a client that sends 64 MiB of lines and never reads a reply must
  not grow the server's memory by more than 32 MiB. transport.write() never
  blocks, it buffers: past HIGH_WATER bytes it calls pause_writing(); stop
  reading that client then (transport.pause_reading()) and read again in
  resume_writing() (transport.resume_reading()). TCP then slows the client.
- idle timeout: a client that sends nothing for IDLE_TIMEOUT (2 s), or stops
  halfway through a line, is closed; a client that keeps sending is never
  closed (restart its timer whenever bytes arrive). This frees what an idle
  client holds (slowloris: lab-1's pool ceiling is the same attack).
- one thread, the event loop (from /proc, outside the server); no CPU burnt
  while idle; under load, replies/s and p95 near the reference's.

As written: every data_received() chunk is answered as if it were one line,
EOF keeps the connection open, nothing stops reading, idle clients stay
forever. Fix the YOUR CODE HERE parts, then run `make lab-4`. Read ../README.md.

Run it alone:  PORT=9000 python protocol_server.py   then   nc localhost 9000
"""

import asyncio
import os
import socket

HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "9000"))
MAX_LINE = 64 * 1024        # the longest line LINE/1 allows (without its b"\n")
HIGH_WATER = 1024 * 1024    # bytes owed to a client before the transport calls pause_writing()
IDLE_TIMEOUT = 2.0          # seconds a client may send nothing before it is closed


def reply(line: bytes) -> bytes:
    """LINE/1: the reply to one line (without its b'\\n') is b'<len> <line>\\n'."""
    return b"%d %s\n" % (len(line), line)


class LineProtocol(asyncio.Protocol):
    """One client: the loop calls these methods; each returns at once."""

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        # asyncio turns Nagle off only on sockets it made itself: without this,
        # replies to pipelined lines wait for the client's ACKs (~40 ms each)
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=HIGH_WATER)
        # YOUR CODE HERE: an input buffer for this connection (a bytearray), and
        # the idle timer: asyncio.get_running_loop().call_later(IDLE_TIMEOUT, fn)
        # calls fn once, later; it returns a handle whose cancel() stops it.

    def data_received(self, data: bytes) -> None:
        # YOUR CODE HERE: restart the idle timer; add data to the buffer; reply
        # to every complete line in it, in order (one transport.write() for them
        # all is cheaper); keep the unfinished rest for the next call. A buffer
        # that passes MAX_LINE without a b"\n": transport.close().
        self.transport.write(reply(data.rstrip(b"\n")))

    def eof_received(self) -> bool | None:
        # YOUR CODE HERE: the client will send nothing more. A true return value
        # keeps the connection half-open; a false one makes the transport send
        # what it still buffers, then close: which one does LINE/1 want?
        return True

    def pause_writing(self) -> None:
        # YOUR CODE HERE: HIGH_WATER bytes wait for a client that is not reading
        pass

    def resume_writing(self) -> None:
        # YOUR CODE HERE: the client read them: read its lines again
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        # YOUR CODE HERE: the connection is gone: cancel its idle timer
        pass


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(LineProtocol, HOST, PORT)   # the factory: one per client
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
