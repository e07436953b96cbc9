"""What every LINE/1 reference server shares: the address, the listening
socket, line framing, and the per-connection state of the non-blocking ones.

LINE/1: for every line L ending in b"\\n" the server replies b"%d %s\\n" % (len(L), L).
"""
import os
import signal
import socket
import sys

MAX_LINE = 64 * 1024        # longest line (without its b"\n") a client may send
RECV_SIZE = 64 * 1024       # bytes asked of each recv()
MAX_PENDING = 1024 * 1024   # non-blocking servers stop reading while this much output waits
NAME = os.path.splitext(os.path.basename(sys.argv[0]))[0]   # "select_server", ...


def log(message):
    print(message, file=sys.stderr, flush=True)


def address():
    return os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "9000"))


def listen(blocking=True, backlog=1024):
    """A listening TCP socket on address(); says so on stderr."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if os.name != "nt":   # on Windows SO_REUSEADDR would let two servers share a port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address())
    sock.listen(backlog)
    sock.setblocking(blocking)
    host, port = sock.getsockname()[:2]
    log(f"{NAME} listening on {host}:{port}")
    return sock


def accept(listener):
    """listener.accept() -> the new socket (with TCP_NODELAY), or None when there is
    none yet (non-blocking listener), the client gave up, or we are out of fds."""
    try:
        sock, _ = listener.accept()
    except (BlockingIOError, ConnectionAbortedError):
        return None
    except OSError as e:
        # EMFILE / ENFILE: the connection waits in the backlog, so the listener stays
        # readable and a level-triggered loop (or a blocking accept loop) comes straight
        # back here: these servers spin at 100% CPU while out of fds, logging each time.
        # The cure (taught in labs/lab-3/README.md): stop watching the listener for a
        # moment (asyncio does: 1 s), or close a reserve fd, accept, close the client,
        # reopen the reserve.
        log(f"{NAME}: accept: {e}")
        return None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # replies go out at once
    return sock


def reply(line):
    """The answer to one line (given without its b"\\n")."""
    return b"%d %s\n" % (len(line), line)


class LineTooLong(ValueError):
    pass


class LineBuffer:
    """Collects received bytes; feed() returns the replies to the lines they complete."""

    def __init__(self):
        self.buf = bytearray()
        self.scanned = 0   # buf[:scanned] holds no b"\n": never search it twice

    def feed(self, data):
        buf = self.buf
        buf += data
        start, out = 0, []
        end = buf.find(b"\n", self.scanned)
        while end >= 0:
            if end - start > MAX_LINE:
                raise LineTooLong(end - start)
            out.append(b"%d " % (end - start))
            out.append(buf[start:end + 1])   # the line and its b"\n"
            start = end + 1
            end = buf.find(b"\n", start)
        del buf[:start]   # cheap: bytearray drops a prefix without moving the rest
        self.scanned = len(buf)
        if len(buf) > MAX_LINE:
            raise LineTooLong(len(buf))
        return b"".join(out)   # one reply buffer for the whole chunk


def serve_blocking(conn):
    """Serve one client on a blocking socket until EOF, a reset or a too-long line."""
    lines = LineBuffer()
    with conn:
        try:
            while True:
                data = conn.recv(RECV_SIZE)   # blocks until bytes, EOF (b"") or an error
                if not data:
                    return   # EOF: every reply has been sent; close
                replies = lines.feed(data)
                if replies:
                    conn.sendall(replies)     # blocks until the kernel took it all
        except (OSError, LineTooLong):        # ConnectionResetError, BrokenPipeError, ...
            return


class Connection:
    """One client of a non-blocking server. The event loop calls on_readable() /
    on_writable() when the socket is ready (a spurious call does no harm) and
    closes the connection when they return False."""

    def __init__(self, sock):
        sock.setblocking(False)
        self.sock, self.lines, self.outbuf = sock, LineBuffer(), bytearray()
        self.eof = self.closed = False
        self.registered = None   # what the event loop last asked the OS to watch

    def fileno(self):
        return self.sock.fileno()

    def wants_read(self):   # not after EOF, and not while the client is not reading our replies
        return not self.eof and len(self.outbuf) < MAX_PENDING

    def wants_write(self):
        return bool(self.outbuf)

    def interest(self, read_flag, write_flag):
        return (read_flag if self.wants_read() else 0) | (write_flag if self.wants_write() else 0)

    def on_readable(self, drain=False):
        """recv() once (drain: until the socket is empty), queue the replies, send them."""
        while self.wants_read():
            try:
                data = self.sock.recv(RECV_SIZE)
            except BlockingIOError:
                break
            except OSError:           # ConnectionResetError, ...
                return False
            if not data:
                self.eof = True       # half-close: send what we owe, then close
                break
            try:
                self.outbuf += self.lines.feed(data)
            except LineTooLong:
                return False
            if not self.on_writable():
                return False
            if not drain:
                break
        return not (self.eof and not self.outbuf)

    def on_writable(self):
        """send() until outbuf is empty or the kernel buffer is full."""
        try:
            while self.outbuf:
                sent = self.sock.send(self.outbuf)
                del self.outbuf[:sent]
        except BlockingIOError:
            pass
        except OSError:               # BrokenPipeError, ConnectionResetError, ...
            return False
        return not (self.eof and not self.outbuf)

    def close(self):
        self.closed = True
        self.sock.close()


def require(module, name, why):
    """Exit with code 2 and one line on stderr if this platform lacks module.name."""
    if not hasattr(module, name):
        log(f"{NAME}: {module.__name__}.{name} is not available on this platform: {why}")
        sys.exit(2)


def _stop(signum, frame):
    raise KeyboardInterrupt


def run(main):
    """Call main(); SIGTERM (docker stop) and Ctrl-C end it quietly."""
    signal.signal(signal.SIGTERM, _stop)
    try:
        main()
    except KeyboardInterrupt:
        pass
