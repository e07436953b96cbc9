"""A correct selectors-based LINE/1 server with one switchable flaw.

Each tests/broken/*.py submission calls serve(flaw=...), so every broken
server differs from a correct one in exactly one way, and the grader must
fail exactly the check that targets that flaw.
"""

import os
import selectors
import socket

FLAWS = {"none", "no_framing", "eof_ignored", "eof_drops_owed", "partial_sends", "dies_on_reset",
         "counts_newline", "always_writable", "no_backpressure", "halfclose_spin"}
MAX_PENDING = 1024 * 1024  # stop reading a client while this much output waits for it


def reply(line: bytes, flaw: str = "none") -> bytes:
    if flaw == "counts_newline":  # the flaw: the length counts the b"\n" too
        return b"%d %s\n" % (len(line) + 1, line)
    return b"%d %s\n" % (len(line), line)


def serve(flaw: str = "none") -> None:
    assert flaw in FLAWS, flaw
    sel = selectors.DefaultSelector()
    listener = socket.create_server((os.environ.get("HOST", "0.0.0.0"),
                                     int(os.environ.get("PORT", "9000"))), reuse_port=False)
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ)
    state: dict[socket.socket, list] = {}  # conn -> [inbuf, outbuf, eof]
    forgotten: list[socket.socket] = []  # eof_ignored's: held open, never closed
    while True:
        for key, events in sel.select():
            sock = key.fileobj
            if sock is listener:
                conn, _ = listener.accept()
                conn.setblocking(False)
                state[conn] = [bytearray(), bytearray(), False]
                sel.register(conn, selectors.EVENT_READ | (
                    selectors.EVENT_WRITE if flaw == "always_writable" else 0))
                continue
            inbuf, outbuf, _ = state[sock]
            try:
                if events & selectors.EVENT_READ:
                    data = sock.recv(65536)
                    if not data and flaw == "eof_drops_owed":
                        # the flaw: closes at once on EOF, dropping the replies still owed
                        sel.unregister(sock)
                        del state[sock]
                        sock.close()
                        continue
                    if not data:
                        state[sock][2] = True
                    elif flaw == "no_framing":
                        outbuf += reply(data.rstrip(b"\n"))
                    else:
                        inbuf += data
                        *lines, rest = inbuf.split(b"\n")
                        outbuf += b"".join(reply(line, flaw) for line in lines)
                        inbuf[:] = rest
                if outbuf:
                    if flaw == "partial_sends":
                        sock.send(outbuf)  # the flaw: ignores how much send() took
                        outbuf.clear()
                    else:
                        sent = sock.send(outbuf)
                        del outbuf[:sent]
            except (ConnectionResetError, BrokenPipeError):
                if flaw == "dies_on_reset":
                    raise
                state[sock][2], outbuf[:] = True, b""
            except BlockingIOError:
                pass
            eof = state[sock][2]
            if eof and not outbuf:
                sel.unregister(sock)
                del state[sock]
                if flaw == "eof_ignored":  # the flaw: never closes it. Nor does it spin on
                    forgotten.append(sock)  # its readable EOF: that is halfclose_spin
                else:
                    sock.close()
            elif sock in state:
                # flaw no_backpressure: reads on while the output piles up; so does
                # eof_drops_owed, the lab-3 starter with only its EOF step left undone
                # (the student server: no backpressure, so replies are owed at EOF)
                bounded = len(outbuf) < MAX_PENDING or flaw in ("no_backpressure",
                                                                "eof_drops_owed")
                # after EOF a socket is readable forever (recv() returns b'' at once):
                # keeping EVENT_READ (flaw halfclose_spin) makes select() return at once
                reading = not eof or flaw == "halfclose_spin"
                wanted = selectors.EVENT_READ if reading and bounded else 0
                if flaw == "always_writable":  # the flaw: asks for writability with nothing
                    sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)  # to send
                    continue
                sel.modify(sock, (wanted | selectors.EVENT_WRITE) if outbuf else
                           (wanted or selectors.EVENT_READ))
