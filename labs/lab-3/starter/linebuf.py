"""lab-3 step 1: LINE/1 framing, written once. Every server of this lab imports it.

server.py (select), poll/server.py, epoll/server.py and selectors/server.py
all `import linebuf`: what a connection does with its bytes is the same
whatever tells you the socket is ready. Get it right once, in step 1, and
steps 2-4 are only about their model. (The grader runs each exercise with
this file beside its server.py; lab.yaml says so with `shared: [linebuf.py]`.)

LINE/1: for every line L a client sends, ending in b"\\n", the reply is
b"%d %s\\n" % (len(L), L), in order: b"hello\\n" -> b"5 hello\\n".

TCP is a byte stream, not a stream of messages:
  - one recv() may return half a line, many lines, or a line and a half;
  - one send() on a non-blocking socket may take only part of what you give it.

What to do (the two YOUR CODE HERE below; step 1's 3 and 4 are in server.py):
  1. LineBuffer.feed(data): add data to the buffer; reply to every complete
     line in it; keep the unfinished rest for the next feed().
     Checks: line.split, line.pipelined, line.large.
  2. send_some(sock, outbuf): send what the socket takes now; delete exactly
     that from the front of outbuf; the rest waits for the next time the
     socket is writable. Check: line.large.

Try it alone:
  python -c "import linebuf; b = linebuf.LineBuffer(); print(b.feed(b'he'), b.feed(b'llo\\nwor'), b.feed(b'ld\\n'))"
  wanted: b'' b'5 hello\\n' b'5 world\\n'
"""

import socket


def reply(line: bytes) -> bytes:
    """The reply to one line, given without its b'\\n'."""
    return b"%d %s\n" % (len(line), line)


class LineBuffer:
    """What one client has sent that is not yet a whole line."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> bytes:
        """Take what recv() returned; return the replies to the lines it completes
        (b'' when it completes none)."""
        # YOUR CODE HERE: append data to self.buf, reply to every complete line in it
        # (everything up to a b"\n", without it), and keep the unfinished rest in
        # self.buf. This answers the whole chunk as if it were one line: wrong as soon
        # as TCP splits a line over two recv()s or brings two lines in one.
        return reply(data.rstrip(b"\n"))


def send_some(sock: socket.socket, outbuf: bytearray) -> None:
    """Send as much of outbuf as the socket takes now; leave the rest in outbuf."""
    try:
        # YOUR CODE HERE: send() returns how many bytes it took, maybe fewer than
        # len(outbuf). Delete only those from outbuf (del outbuf[:n] is cheap).
        sock.send(outbuf)
        outbuf.clear()
    except BlockingIOError:
        pass  # the socket's send buffer is full: the rest waits for writability
