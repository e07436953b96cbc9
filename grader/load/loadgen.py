"""One measurement: Locust's LineUser (and LurkerUser for idle connections,
or ChorusUser for connections that all talk) against one server, through
Locust's library API, in a process of its own (Locust monkey-patches the
standard library with gevent on import). Used by `make bench` (bench/run.py)
and `python -m grader measure` (grader/measure.py).

    python -m grader.load.loadgen '{"host": "tcp://127.0.0.1:9000", "clients": 10, ...}'

cfg: host, clients (LineUsers), idle (connections held besides them), chorus
(true: those connections each send a line every IOLAB_CHORUS_PERIOD s),
duration and warmup (s), server_pid (its CPU time is read from /proc),
connect_wait (s to wait for the held connections), settle (true: then wait
until the server has accepted them, judged by its fd count in /proc).

Prints one JSON object on its last line of stdout. Locust's own statistics
round response times under 100 ms to whole milliseconds, too coarse for
loopback, so a `request` listener keeps every reply's round trip in
microseconds during the measured window (after the lurkers are connected and
a warm-up). The line size and pipelining depth come from IOLAB_LINE_SIZE and
IOLAB_PIPELINE, set by the caller, exactly as for the grader.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import time

import gevent
from locust.env import Environment

from grader.load.locustfile import LURK_CONNECTIONS, ChorusUser, LineUser, LurkerUser


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu_times(pid: int) -> dict[int, float]:
    """CPU seconds of the server and each of its live children (fork_server), by pid."""
    if not pid:
        return {}
    import psutil  # a Locust dependency

    times: dict[int, float] = {}
    try:
        proc = psutil.Process(pid)
        family = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return times
    for p in family:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        times[p.pid] = t.user + t.system
    return times


def settle(pid: int, wanted: int, limit: float) -> None:
    """Wait until the server has accepted the connections: a connect() returns once the
    kernel queued it, and a server that accepts one per loop takes a while for 5000.
    Done when the server holds `wanted` more fds than a bare listener would, or its fd
    count has not grown for a second (it refuses or closes the rest), or it is gone."""
    import psutil  # a Locust dependency

    deadline, last, still = time.monotonic() + limit, -1, time.monotonic()
    while time.monotonic() < deadline:
        try:
            fds = psutil.Process(pid).num_fds()
        except psutil.Error:
            return
        if fds >= wanted + 4:  # stdin, stdout, stderr, the listener
            return
        if fds != last:
            last, still = fds, time.monotonic()
        elif time.monotonic() - still > 1.0:
            return
        gevent.sleep(0.05)


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used in between: a process born since counts from zero."""
    return sum(max(0.0, t - before.get(pid, 0.0)) for pid, t in after.items())


def measure(cfg: dict) -> dict:
    clients = int(cfg.get("clients", 1))
    idle = int(cfg.get("idle", 0))
    lurkers = math.ceil(idle / LURK_CONNECTIONS) if idle else 0  # each holds LURK_CONNECTIONS
    duration, warmup = float(cfg.get("duration", 3)), float(cfg.get("warmup", 0.5))
    holder = ChorusUser if cfg.get("chorus") else LurkerUser
    classes = [LineUser]
    if lurkers:
        holder.fixed_count = lurkers  # spawned first; LineUser takes the rest by weight
        classes.append(holder)
    env = Environment(user_classes=classes, host=cfg["host"], stop_timeout=1)
    window = {"on": False}
    rtts: list[float] = []
    chorus_rtts: list[float] = []
    counts = {"ok": 0, "err": 0, "connect_ok": 0, "connect_err": 0, "first_error": "",
              "chorus_ok": 0, "chorus_err": 0}

    def on_request(request_type, response_time, exception, **_):
        if request_type == "CONNECT":
            counts["connect_ok" if exception is None else "connect_err"] += 1
            if exception is not None and not counts["first_error"]:
                counts["first_error"] = f"idle connection: {exception}"
            return
        if request_type == "CHORUS":
            if window["on"]:
                counts["chorus_ok" if exception is None else "chorus_err"] += 1
                if exception is None:
                    chorus_rtts.append(response_time * 1000.0)  # from the round's start
            return
        if not window["on"]:
            return
        if exception is None:
            counts["ok"] += 1
            rtts.append(response_time * 1000.0)  # ms -> µs
        else:
            counts["err"] += 1
            if not counts["first_error"]:
                counts["first_error"] = f"{type(exception).__name__}: {exception}"

    env.events.request.add_listener(on_request)
    runner = env.create_local_runner()
    runner.start(clients + lurkers, spawn_rate=10_000)
    started = time.monotonic()
    while (counts["connect_ok"] + counts["connect_err"] < lurkers * LURK_CONNECTIONS
           and time.monotonic() - started < float(cfg.get("connect_wait", 90))):
        gevent.sleep(0.05)
    if cfg.get("settle") and cfg.get("server_pid"):
        settle(int(cfg["server_pid"]), clients + idle, float(cfg.get("connect_wait", 90)))
    connect_seconds = time.monotonic() - started
    gevent.sleep(warmup)
    pid = int(cfg.get("server_pid", 0))
    cpu0, t0, server0 = cpu_seconds(), time.perf_counter(), server_cpu_times(pid)
    window["on"], window_ns = True, [time.monotonic_ns()]
    gevent.sleep(duration)
    window["on"] = False
    window_ns.append(time.monotonic_ns())
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    server_cpu = cpu_delta(server0, server_cpu_times(pid))
    held = 0
    for greenlet in list(runner.user_greenlets):
        user = greenlet.args[0] if greenlet.args else None
        if isinstance(user, (LurkerUser, ChorusUser)):
            held += user.check()
    runner.quit()
    return {
        "clients": clients, "idle": idle, "replies": counts["ok"], "errors": counts["err"],
        "rps": counts["ok"] / elapsed, "p50_us": percentile(rtts, 0.50),
        "p99_us": percentile(rtts, 0.99), "loadgen_cpu_s": cpu, "seconds": elapsed,
        "replies_per_cpu_s": counts["ok"] / cpu if cpu > 0 else 0.0,
        "server_cpu_s": server_cpu,
        "replies_per_server_cpu_s": counts["ok"] / server_cpu if server_cpu > 0 else 0.0,
        "idle_connected": counts["connect_ok"], "idle_failed": counts["connect_err"],
        "idle_held": held, "connect_seconds": connect_seconds,
        "first_error": counts["first_error"], "chorus_replies": counts["chorus_ok"],
        "chorus_errors": counts["chorus_err"], "window_ns": window_ns,
        "chorus_p50_us": percentile(chorus_rtts, 0.50),
        "chorus_p99_us": percentile(chorus_rtts, 0.99),
    }


def main(argv: list[str]) -> int:
    result = measure(json.loads(argv[0]))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
