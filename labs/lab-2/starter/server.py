"""lab-2: a non-blocking LINE/1 server that polls every socket itself (no select).

This is the course notes' non-blocking example made to speak LINE/1: every
socket is non-blocking, accept()/recv()/send() return at once and raise
BlockingIOError when nothing is ready, and the loop asks every socket again
and again. It runs, but it answers each recv() chunk as if it were one line,
drops what send() did not take, and forgets a client that half-closes. Fix
the three places marked YOUR CODE HERE, then run `make lab-2`. Watch `top`
while it runs: the loop burns a whole core even with no client at all.

Run it alone:  PORT=9000 python server.py   then   nc localhost 9000
"""

import os
import socket

HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "9000"))


def reply(line: bytes) -> bytes:
    """LINE/1: the reply to one line (without its b'\\n') is b'<len> <line>\\n'."""
    return b"%d %s\n" % (len(line), line)


class Client:
    """One connected client: its socket and its input and output buffers."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock, self.inbuf, self.outbuf, self.eof = sock, bytearray(), bytearray(), False

    def poll_read(self) -> bool:
        """Take what arrived, if anything; queue a reply per complete line. False once gone."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return True  # nothing yet: ask again on the next pass
        except ConnectionResetError:
            return False
        if not data:
            # YOUR CODE HERE: EOF is a half-close: the client may still be owed
            # replies. Remember it (self.eof) and close only once outbuf is sent.
            return False
        # YOUR CODE HERE: add data to inbuf; reply once per complete line and
        # keep an unfinished line for later. This treats the chunk as one line.
        self.outbuf += reply(data.rstrip(b"\n"))
        return True

    def poll_write(self) -> bool:
        """Send what the socket takes now; keep the rest. False once gone."""
        if not self.outbuf:
            return True
        try:
            # YOUR CODE HERE: send() may take only part (or raise
            # BlockingIOError): delete only what was sent, keep the rest.
            self.sock.send(self.outbuf)
            self.outbuf.clear()
        except BlockingIOError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            return False
        return True


def main() -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, PORT))
    listener.listen(1024)
    listener.setblocking(False)   # accept() raises BlockingIOError instead of waiting
    clients: list[Client] = []
    while True:                   # spins: never waits for anything
        try:
            conn, _ = listener.accept()
            clients.append(Client(conn))
        except BlockingIOError:
            pass
        for client in list(clients):
            if not (client.poll_read() and client.poll_write()):
                client.sock.close()
                clients.remove(client)


if __name__ == "__main__":
    main()
