"""lab-3 step 1: a LINE/1 server on select.select.

This is the course notes' select() example, made to speak LINE/1. It runs,
but it answers each recv() chunk as if it were one line, it cannot finish a
reply that send() only partly took, it forgets a client that half-closes,
and it dies at its 1021st client. Read README.md beside this folder first.

What to do (each YOUR CODE HERE):
  1-2. linebuf.py (beside this file): framing and partial sends. You write
     it once; steps 2-4 import it. Checks: line.split, line.pipelined, line.large.
  3. EOF, below: recv() returning b'' means the client half-closed: it sends
     no more but may still be owed replies. Stop reading it (leave it out of
     select()'s read list: a half-closed socket is readable forever, so
     select() would return at once, every time), send what it is owed, then
     close it. (The notes' example never handles b''.) Check: robust.eof.
  4. FD_SETSIZE, below: select() cannot watch an fd of 1024 or more
     (ValueError: filedescriptor out of range in select()). Refuse such a
     client (accept it, then close it) and keep serving the others.
     The select-limit exercise grades it: robust.refuse_past_fd_setsize.

`make lab-3 EXERCISE=select` (and EXERCISE=select-limit for 4).
Run it alone:  PORT=9000 python server.py   then   nc localhost 9000
"""

import os
import select
import socket

import linebuf

HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "9000"))
FD_SETSIZE = 1024  # select() takes fds 0..1023 only (libc's fd_set is that big)


class Conn:
    """One client: its socket, its unfinished line, the replies not yet sent."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.lines, self.outbuf = sock, linebuf.LineBuffer(), bytearray()
        self.eof = False  # the client half-closed: read no more, close once outbuf is sent


def listen() -> socket.socket:
    """A non-blocking listening socket on HOST:PORT."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, PORT))
    listener.listen(1024)
    listener.setblocking(False)
    return listener


def main() -> None:
    listener = listen()
    conns: dict[socket.socket, Conn] = {}

    def close(c: Conn) -> None:
        del conns[c.sock]
        c.sock.close()

    def send(c: Conn) -> None:
        try:
            linebuf.send_some(c.sock, c.outbuf)
        except (ConnectionResetError, BrokenPipeError):
            close(c)

    while True:
        readers = [listener, *conns]
        writers = [sock for sock, c in conns.items() if c.outbuf]  # only while output waits
        readable, writable, _ = select.select(readers, writers, [])  # sleeps until one is ready
        for sock in readable:
            if sock is listener:
                try:
                    new, _ = listener.accept()
                except BlockingIOError:
                    continue
                # YOUR CODE HERE (4, FD_SETSIZE): select() raises ValueError for an fd of
                # FD_SETSIZE or more, and that ends the server with every client. Close
                # such a client at once (a refusal) instead of watching it.
                new.setblocking(False)
                conns[new] = Conn(new)
                continue
            c = conns.get(sock)
            if c is None:  # closed earlier in this pass
                continue
            try:
                data = sock.recv(65536)
            except ConnectionResetError:  # the client reset: forget it (as the notes do)
                close(c)
                continue
            if not data:
                # YOUR CODE HERE (3, EOF): the client only half-closed: it may still be owed
                # replies. Set c.eof, leave it out of `readers` from now on, and close it once
                # c.outbuf is empty: now if it already is, else after the send that empties it.
                close(c)
                continue
            c.outbuf += c.lines.feed(data)
            send(c)  # most replies go out at once; select() waits for the rest
        for sock in writable:
            if sock in conns:
                send(conns[sock])


if __name__ == "__main__":
    main()
