"""LINE/1 server, model: asyncio callbacks (asyncio.Protocol on the event loop).

Blocks: only the event loop, in its selector (epoll on Linux, kqueue on macOS;
on Windows the proactor loop waits on IOCP completions instead). No coroutine
per client: the loop calls this Protocol's methods when something happened on
its connection (connection_made, data_received, eof_received, pause_writing,
resume_writing, connection_lost) — the course notes' 回调 (callbacks). Each
callback must return at once; the transport buffers what the kernel did not
take. asyncio_server.py's streams are written on top of exactly these calls.
Flow control: past MAX_PENDING bytes owed to a client the transport calls
pause_writing() and this server stops reading that client until it drains.
Idle timeout: a client that sends nothing for IDLE_TIMEOUT seconds (and reads
nothing it is owed) is closed.
Scales: to tens of thousands of clients.
Needs: asyncio (Linux, macOS, Windows).
"""
import asyncio
import socket

from lineproto import MAX_PENDING, LineBuffer, LineTooLong, listen, run

IDLE_TIMEOUT = 2.0   # seconds a client may stay silent before it is closed


class LineProtocol(asyncio.Protocol):
    """One client. The loop makes one instance per connection (the factory below)."""

    def connection_made(self, transport):
        self.transport, self.lines, self.idle, self.owed = transport, LineBuffer(), None, 0
        # asyncio turns Nagle off only on sockets it made itself (see asyncio_server.py)
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=MAX_PENDING)   # pause_writing() past this
        self.restart_idle_timer()

    def restart_idle_timer(self):
        if self.idle is not None:
            self.idle.cancel()
        self.idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self.idle_too_long)

    def idle_too_long(self):
        owed = self.transport.get_write_buffer_size()
        if owed and owed != self.owed:   # silent, but still reading what it is owed
            self.owed = owed
            self.restart_idle_timer()
        elif owed:   # close() would wait for a client that reads nothing: forever
            self.transport.abort()
        else:
            self.transport.close()

    def data_received(self, data):
        self.restart_idle_timer()
        try:
            replies = self.lines.feed(data)
        except LineTooLong:
            self.transport.close()
            return
        if replies:
            self.transport.write(replies)   # never blocks: the transport keeps the rest

    def eof_received(self):
        return False   # half-close: the transport sends what it still holds, then closes

    def pause_writing(self):   # MAX_PENDING bytes wait for a client that is not reading
        self.transport.pause_reading()   # backpressure: its lines wait in the kernel

    def resume_writing(self):
        self.transport.resume_reading()

    def connection_lost(self, exc):   # closed, reset or aborted: forget the timer
        if self.idle is not None:
            self.idle.cancel()


async def serve():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(LineProtocol, sock=listen(blocking=False))
    async with server:
        await server.serve_forever()


def main():
    asyncio.run(serve())


if __name__ == "__main__":
    run(main)
