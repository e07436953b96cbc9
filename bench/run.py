"""`make bench`: every reference server side by side, in one run, on this machine.

    python -m bench.run [--smoke] [--out DIR]

Local mode: each server is a subprocess on loopback, and each measurement is
Locust's LineUser (plus LurkerUser for idle connections) in a process of its
own (bench/loadgen.py). Writes DIR (default bench/results/<date>/):
scale.csv, idle.csv, c10k.csv, throughput.svg, idle_latency.svg and
summary.md. --smoke is the quick version CI runs (< 60 s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import report
from bench.servers import Server, reference_servers, server_cores, uvloop_available

REPO = Path(__file__).resolve().parent.parent

# repeats: runs of each point, interleaved (every server, then again), the best one kept.
FULL = {"servers": None, "clients": [1, 10, 100], "duration": 1.5, "repeats": 2,
        "idle_servers": ["select", "poll", "epoll"], "idle": [0, 100, 500, 1000, 5000],
        "idle_duration": 2.0, "c10k": 10_000, "c10k_clients": 10, "c10k_duration": 3.0,
        "duel_clients": 100, "duel_rounds": 5, "duel_pipelines": [1, 16], "duel_duration": 1.5}
SMOKE = {"servers": ["epoll", "asyncio"], "clients": [1, 10], "duration": 0.5, "repeats": 1,
         "idle_servers": ["poll", "epoll"], "idle": [0, 200], "idle_duration": 0.5,
         "c10k": 500, "c10k_clients": 2, "c10k_duration": 0.5,
         "duel_clients": 10, "duel_rounds": 1, "duel_pipelines": [1], "duel_duration": 0.5}


def raise_nofile(wanted: int) -> int:
    """RLIMIT_NOFILE up to the hard limit; servers started later inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def loadgen(server: Server, clients: int, duration: float, idle: int = 0,
            warmup: float = 0.5, pipeline: int = 1, apart: bool = False) -> dict:
    """One measurement; apart: keep the load generator off the server's core (a
    one-client round trip is ~3x shorter when both share a core, which the scheduler
    decides run by run: latency comparisons need the same placement every time)."""
    per_lurker = min(idle, 1000) or 1
    env = dict(os.environ, IOLAB_LINE_SIZE="1024", IOLAB_PIPELINE=str(pipeline),
               IOLAB_REPLY_TIMEOUT="2", IOLAB_LURK_CONNECTIONS=str(per_lurker),
               IOLAB_LURK_CHECK="3600")
    cfg = {"host": server.host, "clients": clients, "idle": idle, "duration": duration,
           "warmup": warmup, "server_pid": server.proc.pid}
    others = os.sched_getaffinity(0) - server_cores()
    pin = (lambda: os.sched_setaffinity(0, others)) if apart and others else None
    proc = subprocess.run([sys.executable, "-m", "bench.loadgen", json.dumps(cfg)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=duration + 180,
                          preexec_fn=pin)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"loadgen failed against {server.name}: {proc.stderr[-800:]}")
    result = json.loads(lines[-1])
    result["server"], result["pipeline"] = server.name, pipeline
    return result


def progress(message: str) -> None:
    print(message, flush=True)


def show(r: dict) -> str:
    extra = f", {r['errors']} errors ({r['first_error'][:60]})" if r["errors"] else ""
    idle = f" idle={r['idle']} held={r['idle_held']}" if r["idle"] else ""
    return (f"  {r['server']:<12} clients={r['clients']:<3}{idle} {r['rps']:>9,.0f} replies/s"
            f"  p50 {r['p50_us']:>7.0f} µs  p99 {r['p99_us']:>7.0f} µs"
            f"  server {r['replies_per_server_cpu_s']:>7,.0f}/CPU-s"
            f"  loadgen {r['replies_per_cpu_s']:>7,.0f}/CPU-s{extra}")


def scale_phase(cfg: dict, servers: list[str], logs: Path) -> list[dict]:
    """Every server at every client count; repeats interleaved, the best run kept."""
    best: dict[tuple[str, int], dict] = {}
    for _ in range(cfg["repeats"]):
        for clients in cfg["clients"]:
            for name in servers:
                if name == "iterative" and clients != 1:
                    continue  # one client at a time, by design
                with Server(name, logs) as server:
                    row = loadgen(server, clients, cfg["duration"])
                progress(show(row))
                key = (name, clients)
                if key not in best or row["rps"] > best[key]["rps"]:
                    best[key] = row
    return [best[(n, c)] for n in servers for c in cfg["clients"] if (n, c) in best]


def idle_phase(cfg: dict, logs: Path) -> list[dict]:
    """One active client while idle connections are held; the lowest-latency repeat kept."""
    best: dict[tuple[str, int], dict] = {}
    for _ in range(cfg["repeats"]):
        for idle in cfg["idle"]:
            for name in cfg["idle_servers"]:
                with Server(name, logs) as server:  # fresh: no leftovers from the last level
                    row = loadgen(server, 1, cfg["idle_duration"], idle=idle, apart=True)
                progress(show(row))
                key = (name, idle)
                old = best.get(key)
                if old is None or (row["replies"] > 0, -row["p50_us"]) > (
                        old["replies"] > 0, -old["p50_us"]):
                    best[key] = row
    return [best[(n, i)] for n in cfg["idle_servers"] for i in cfg["idle"]]


def duel_phase(cfg: dict, servers: list[str], logs: Path) -> list[dict]:
    """epoll against the asyncio baselines in short rounds, back to back, the order
    flipped every round: each round's ratio compares runs that met the same noise."""
    names = [n for n in ("epoll", "asyncio", "uvloop") if n in servers]
    rows = []
    for rnd in range(cfg["duel_rounds"]):
        for pipeline in cfg["duel_pipelines"]:
            for name in names if rnd % 2 == 0 else names[::-1]:
                with Server(name, logs) as server:
                    row = loadgen(server, cfg["duel_clients"], cfg["duel_duration"],
                                  pipeline=pipeline)
                row["round"] = rnd
                rows.append(row)
                progress(show(row) + f"  (round {rnd + 1}, pipeline {pipeline})")
    return rows


def c10k_phase(cfg: dict, logs: Path) -> list[dict]:
    with Server("epoll", logs) as server:
        row = loadgen(server, cfg["c10k_clients"], cfg["c10k_duration"], idle=cfg["c10k"])
    progress(show(row))
    return [row]


def machine(load_before: float = 0.0) -> dict:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
                 platform.processor() or "unknown")
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "python": platform.python_version(), "nofile": resource.getrlimit(
                resource.RLIMIT_NOFILE)[0], "load": (load_before, os.getloadavg()[0])}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="the quick version (CI)")
    parser.add_argument("--out", type=Path, help="default: bench/results/<date>/")
    args = parser.parse_args(argv)
    cfg = SMOKE if args.smoke else FULL
    out = args.out or REPO / "bench" / "results" / datetime.now(timezone.utc).strftime("%Y-%m-%d")
    out.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="iolab-bench-"))  # the servers' logs, kept on failure
    nofile = raise_nofile(cfg["c10k"] + 1000)
    started, load_before = time.monotonic(), os.getloadavg()[0]
    servers = cfg["servers"] or reference_servers()
    if uvloop_available():
        servers = servers + ["uvloop"]
    else:
        progress("uvloop is not installed: no uvloop baseline (make bench installs it)")
    progress(f"bench: {len(servers)} servers, local mode on loopback, RLIMIT_NOFILE {nofile}")
    progress(f"[1/4] replies/s and latency at {cfg['clients']} clients, 1 KiB lines")
    scale = scale_phase(cfg, servers, logs)
    progress(f"[2/4] epoll against asyncio streams: {cfg['duel_rounds']} paired rounds")
    duel = duel_phase(cfg, servers, logs)
    progress(f"[3/4] latency with {cfg['idle']} idle connections held")
    idle = idle_phase(cfg, logs)
    progress(f"[4/4] C10K: epoll with {cfg['c10k']:,} connections")
    c10k = c10k_phase(cfg, logs) if nofile > cfg["c10k"] + 500 else []  # per process
    if not c10k:
        progress(f"C10K skipped: RLIMIT_NOFILE {nofile} is too low (raise `ulimit -Hn`)")
    seconds = time.monotonic() - started
    report.write(out, scale, duel, idle, c10k, machine(load_before), seconds, smoke=args.smoke,
                 uvloop="uvloop" in servers, repeats=cfg["repeats"])
    shutil.rmtree(logs, ignore_errors=True)
    progress(f"bench: {seconds:.0f} s; results in {out}")
    print((out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
