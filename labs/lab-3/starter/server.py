"""lab-3 step 1: a LINE/1 server on select.select.

This is the course notes' select() example, made to speak LINE/1. It runs,
but it answers each recv() chunk as if it were one line, it cannot finish a
reply that send() only partly took, and it forgets a client that half-closes.
Run `make lab-3` to see which checks that breaks, then fix the three places
marked YOUR CODE HERE. Read README.md beside this folder first.

Run it alone:  PORT=9000 python server.py   then   nc localhost 9000
"""

import os
import select
import socket

HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "9000"))


def reply(line: bytes) -> bytes:
    """LINE/1: the reply to one line (without its b'\\n') is b'<len> <line>\\n'."""
    return b"%d %s\n" % (len(line), line)


def on_readable(conn: socket.socket, inbuf: bytearray, outbuf: bytearray) -> bool:
    """Read what arrived; queue a reply per complete line. False when the client is gone."""
    data = conn.recv(65536)
    if not data:
        return False
    # YOUR CODE HERE: append data to inbuf and reply to every complete line in it;
    # keep an unfinished line in inbuf for the next recv(). This treats the
    # whole chunk as one line, which is wrong as soon as TCP splits or merges.
    outbuf += reply(data.rstrip(b"\n"))
    return True


def on_writable(conn: socket.socket, outbuf: bytearray) -> None:
    """Send as much of outbuf as the socket takes now; keep the rest."""
    # YOUR CODE HERE: send() may take only part of outbuf. Delete what was
    # sent and keep the rest for the next time the socket is writable.
    conn.send(outbuf)
    outbuf.clear()


def main() -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, PORT))
    listener.listen(1024)
    listener.setblocking(False)
    inbufs: dict[socket.socket, bytearray] = {}
    outbufs: dict[socket.socket, bytearray] = {}
    while True:
        writers = [c for c, buf in outbufs.items() if buf]
        readable, writable, _ = select.select([listener, *inbufs], writers, [])
        for sock in readable:
            if sock is listener:
                conn, _ = listener.accept()
                conn.setblocking(False)
                inbufs[conn], outbufs[conn] = bytearray(), bytearray()
                continue
            try:
                open_ = on_readable(sock, inbufs[sock], outbufs[sock])
            except ConnectionResetError:  # the client reset: forget it (as the notes do)
                open_ = False
            if not open_:
                # YOUR CODE HERE: on EOF (recv() returned b'') the client has only
                # half-closed: it may still be owed replies. Send them first, then close.
                del inbufs[sock], outbufs[sock]
                sock.close()
        for sock in writable:
            if sock in outbufs:
                try:
                    on_writable(sock, outbufs[sock])
                except (ConnectionResetError, BrokenPipeError):
                    del inbufs[sock], outbufs[sock]
                    sock.close()


if __name__ == "__main__":
    main()
