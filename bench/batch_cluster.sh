#!/bin/bash
# Students/hour of `python -m grader batch` on one machine (-j 1, -j 2) and on a Dask
# scheduler with 2 workers (LOAD=1 each) on the SAME machine (issue 12 §3). On one
# 2-core machine the cluster cannot be faster than -j 2 (it is the same two gradings at a
# time, plus shipping the files); the run shows what the cluster costs and that its
# verdicts are one machine's. Usage: bash bench/batch_cluster.sh [MODE] [EXERCISE]
# (defaults: docker select). Prints one line per run and whether the verdicts agree.
set -eu
REPO=$(cd "$(dirname "$0")/.." && pwd); V=$REPO/.venv/bin
MODE=${1:-docker}; EXERCISE=${2:-select}
B=$(mktemp -d /tmp/iolab-bench-cluster-XXXX); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$B"' EXIT
mkdir "$B/corpus"
for i in 1 2; do mkdir "$B/corpus/correct-$i"
  cp "$REPO/servers/select_server.py" "$B/corpus/correct-$i/server.py"
  cp "$REPO/servers/lineproto.py" "$B/corpus/correct-$i/"; done
for f in no_framing eof_ignored partial_sends; do mkdir "$B/corpus/broken-$f"
  cp "$REPO/tests/broken/$f.py" "$B/corpus/broken-$f/server.py"
  cp "$REPO/tests/broken/flawed.py" "$B/corpus/broken-$f/"; done
cp -r "$REPO/labs/lab-3/starter" "$B/corpus/starter-1"
export IOLAB_LOAD_LOCK=$B/load.lock
cd "$REPO"
run() {
  name=$1; shift; s=$(date +%s.%N)
  $V/python -m grader batch lab-3 "$B/corpus" --exercise "$EXERCISE" --mode "$MODE" \
    --out "$B/out-$name" --no-similarity "$@" > "$B/$name.log" 2>&1
  e=$(date +%s.%N)
  $V/python -c "import json; d = json.load(open('$B/out-$name/summary.json')); n = len(d['students']); w = $e - $s; print(f'$name: {n} students in {w:.0f} s = {n * 3600 / w:.0f} students/hour (load average {open(\"/proc/loadavg\").read().split()[0]})', d['counts'])"
}
run j1 -j 1
run j2 -j 2
PYTHONPATH=$REPO $V/dask scheduler --host 127.0.0.1 --port 0 --no-dashboard \
  --scheduler-file "$B/scheduler.json" > "$B/scheduler.log" 2>&1 & PIDS+=($!)
while [ ! -f "$B/scheduler.json" ]; do sleep 0.2; done
A=$($V/python -c "import json; print(json.load(open('$B/scheduler.json'))['address'])")
for i in 1 2; do
  PYTHONPATH=$REPO IOLAB_PROJECT_PREFIX=iolab-bench-w$i $V/dask worker "$A" --no-nanny \
    --nthreads 1 --resources LOAD=1 --name "w$i" --no-dashboard --local-directory "$B/w$i" \
    > "$B/w$i.log" 2>&1 & PIDS+=($!)
done
sleep 5
run cluster2 --cluster "$A"
$V/python - "$B" <<'PY'
import json, sys
runs = {n: json.load(open(f"{sys.argv[1]}/out-{n}/summary.json")) for n in ("j1", "j2", "cluster2")}
def checks(d):
    return {(s["student"], e, c): v for s in d["students"] for e, x in s["exercises"].items()
            for c, v in x["checks"].items()}
base = checks(runs["j2"])
for name in ("j1", "cluster2"):
    other = checks(runs[name])
    diff = sorted(k for k in base if other.get(k) != base[k])
    print(f"check results differing, {name} vs j2: {len(diff)} of {len(base)}",
          [(k, other.get(k), base[k]) for k in diff])
PY
