"""The yardstick: a plain line echo server that cannot be handed in.

It answers every line L (ending in b"\\n") with L itself, unchanged. LINE/1 asks
for b"%d %s\\n" % (len(L), L), so this server fails every LINE/1 check: it is no
answer to any exercise. It exists to measure the machine: the grader drives it
with the same Locust user in echo mode (IOLAB_PROTOCOL=echo) and the same load
as a submission, in the same place (a container with the exercise's limits, or
a local subprocess), and judges relative load thresholds against its figures
when an exercise has no reference server (a student handout), or when lab.yaml
says `load: {calibration: yardstick}` (grader/calibration.py).

Model: non-blocking IO multiplexing with selectors.DefaultSelector, framing
lines as a LINE/1 server does, so its cost per reply is close to the reference
servers' (the scale factors in grader/calibration.py say how close).
Self-contained (no import from servers/): it runs from grader/yardstick/.
"""
import os
import selectors
import socket
import sys

RECV_SIZE = 64 * 1024
MAX_PENDING = 1024 * 1024  # stop reading a client while this much output waits


def listen():
    host, port = os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "9000"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    print(f"echo yardstick listening on {host}:{port}", file=sys.stderr, flush=True)
    return sock


class Client:
    def __init__(self, sock):
        self.sock, self.inbuf, self.outbuf = sock, bytearray(), bytearray()

    def readable(self):
        try:
            data = self.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        self.inbuf += data
        end = self.inbuf.rfind(b"\n")
        if end >= 0:  # every complete line, echoed as it came, in one send
            self.outbuf += self.inbuf[:end + 1]
            del self.inbuf[:end + 1]
        return self.writable()

    def writable(self):
        try:
            sent = self.sock.send(self.outbuf) if self.outbuf else 0
        except BlockingIOError:
            return True
        except OSError:
            return False
        del self.outbuf[:sent]
        return True

    def interest(self):
        read = selectors.EVENT_READ if len(self.outbuf) < MAX_PENDING else 0
        return read | (selectors.EVENT_WRITE if self.outbuf else 0) or selectors.EVENT_READ


def main():
    sel = selectors.DefaultSelector()
    listener = listen()
    sel.register(listener, selectors.EVENT_READ, None)
    while True:
        for key, events in sel.select():
            client = key.data
            if client is None:
                try:
                    sock, _ = listener.accept()
                except OSError:
                    continue
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sel.register(sock, selectors.EVENT_READ, Client(sock))
                continue
            ok = True
            if events & selectors.EVENT_READ:
                ok = client.readable()
            if ok and events & selectors.EVENT_WRITE:
                ok = client.writable()
            if not ok:
                sel.unregister(client.sock)
                client.sock.close()
            elif client.interest() != key.events:
                sel.modify(client.sock, client.interest(), client)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
