"""Hostile: a correct LINE/1 server that, the whole time, tries to reach what a
sandboxed server must not: the internet, the host, Locust's master (to inject
statistics), the grader (also through the PID namespace it shares with the
grader's stage: kill, ptrace, /proc), the Docker socket. It can only try: every attempt and
its outcome is printed ("REACHED" would be a hole), nothing else.

A file `probe_port` beside this one (written by the test) names a port the
test listens on, on the host: reaching it would mean reaching the host.
"""

import os
import socket
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


LOCK = threading.Lock()


def log(text: str) -> None:
    with LOCK:  # one line at a time from many threads
        print(text, flush=True)


def attempt(what: str, fn) -> None:
    started = time.monotonic()
    try:
        fn()
        log(f"REACHED {what}")
    except OSError as exc:
        log(f"blocked {what}: {exc} ({time.monotonic() - started:.1f} s)")


def tcp(host: str, port: int):
    def go() -> None:
        socket.create_connection((host, port), timeout=1).close()
    return go


def udp(host: str, port: int):
    def go() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1)
            s.connect((host, port))
            s.send(b"\0\1\1\0\0\1\0\0\0\0\0\0\0\0\1\0\1")  # a DNS query for "."
            s.recv(512)
    return go


def docker_socket() -> None:
    for path in ("/var/run/docker.sock", "/run/docker.sock"):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(path)


def pid_namespace() -> None:
    """The grader's stage shares this PID namespace (compose.yaml `pid:`): try to
    signal, trace and read every process that is not ours."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    seen: set[tuple[int, bytes]] = set()
    while True:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                if os.stat(f"/proc/{pid}").st_uid == os.getuid():
                    continue
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")[:80]
            except OSError:
                continue
            if (pid, cmd) in seen:
                continue
            if cmd.startswith(b"runc init"):
                # A process docker is still starting in this PID namespace (the
                # grader's stage joining it): root for a moment, then its user. Killing
                # it then reaches nothing of another user's; once it has run its
                # program it is judged by its user like the rest.
                continue
            seen.add((pid, cmd))
            log(f"pid {pid} of another user: {cmd!r}")
            attempt(f"pid {pid} kill", lambda p=pid: os.kill(p, 9))
            attempt(f"pid {pid} environ", lambda p=pid: open(f"/proc/{p}/environ").read())
            attempt(f"pid {pid} root /results", lambda p=pid: os.listdir(f"/proc/{p}/root/results"))
            attempt(f"pid {pid} fd", lambda p=pid: os.listdir(f"/proc/{p}/fd"))

            def trace(p=pid) -> None:
                if libc.ptrace(16, p, None, None) != 0:  # PTRACE_ATTACH
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err))
            attempt(f"pid {pid} ptrace", trace)
        time.sleep(0.05)


def forever(what: str, fn) -> None:
    while True:
        attempt(what, fn)
        time.sleep(1)


def probe() -> None:
    own = socket.gethostbyname(socket.gethostname())  # from /etc/hosts: no DNS
    gateway = ".".join(own.split(".")[:3] + ["1"]), ".".join(own.split(".")[:2] + ["0", "1"])
    try:
        host_port = int(open(os.path.join(HERE, "probe_port")).read())
    except (OSError, ValueError):
        host_port = 0
    targets = [("locust-master:5557", tcp("locust-master", 5557)),
               ("grader:9000", tcp("grader", 9000)),
               ("docker socket", docker_socket),
               ("internet tcp 1.1.1.1:53", tcp("1.1.1.1", 53)),
               ("internet udp 1.1.1.1:53", udp("1.1.1.1", 53))]
    if host_port:
        targets += [(f"host {gw}:{host_port}", tcp(gw, host_port)) for gw in sorted(set(gateway))]
    for what, fn in targets:  # each on its own: a slow name lookup holds up no other
        threading.Thread(target=forever, args=(what, fn), daemon=True).start()
    pid_namespace()


def serve(conn: socket.socket) -> None:
    buf = b""
    with conn:
        while data := conn.recv(65536):
            buf += data
            *lines, buf = buf.split(b"\n")
            conn.sendall(b"".join(b"%d %s\n" % (len(x), x) for x in lines))


threading.Thread(target=probe, daemon=True).start()
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((os.environ.get("HOST", "0.0.0.0"), int(os.environ.get("PORT", "9000"))))
srv.listen(128)
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
