"""A batch across machines on Dask distributed: `python -m grader batch LAB DIR --cluster tcp://HOST:8786`.

The engine is Dask's (README.md, "Grading a class on many machines", says why):

    dask scheduler                                      # on one machine (port 8786)
    dask worker tcp://HOST:8786 --resources LOAD=1      # on each grading machine,
                                                        # in its checkout (make worker)

Each student is one Dask task that needs one unit of the LOAD resource, so a
worker started with LOAD=1 grades one student at a time: one load phase per
machine, its figures judged against a calibration taken on that machine close
in time. The machines share no disk: the task carries the submission as zip
bytes and returns the student's results folder as zip bytes, unpacked into the
class folder on the machine that submitted the batch. On the worker the
grading is grader/job.py's `run`, exactly as on one machine, with that
machine's Docker engine (or local mode), its own compose project prefix and
its machine-wide load lock.

A worker that dies (SIGKILL, a machine gone) has its tasks rescheduled by the
scheduler onto the others; its graders notice their parent is gone and tear
their stacks down (grader/guarded.py). Every task has a key of its own, so a
student's result arrives once. A worker whose grader or lab differs from the
submitting checkout is refused before the batch starts (its grades would be
keyed under a version it does not run).
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import socket
import tempfile
import time
import zipfile
from pathlib import Path

from grader import job
from grader.errors import UsageError
from grader.fingerprint import grader_version, lab_hash, submission_files
from grader.load.lock import LOAD_LOCK_ENV

RESOURCE = "LOAD"
PREFIX_ENV = "IOLAB_PROJECT_PREFIX"  # compose project prefix of this machine's stacks
STOP_POLL = 2.0  # seconds between a task's looks at the batch's stop event
# The grader this process was started with: a long-running worker whose checkout
# changed since grades with new files in its graders but old code in itself.
STARTED_WITH = grader_version()


# ---- both sides: folders as bytes -------------------------------------------------

def zip_files(files: list[tuple[str, Path]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in files:
            archive.write(path, name)
    return buffer.getvalue()


def zip_folder(folder: Path) -> bytes:
    return zip_files([(p.relative_to(folder).as_posix(), p) for p in sorted(folder.rglob("*"))
                      if p.is_file() and not p.is_symlink()])


def unzip(data: bytes, dest: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(dest)  # zipfile drops absolute paths and ".." parts


def pack_submission(submission: Path) -> tuple[bytes, str]:
    """(zip bytes, how to find it after unpacking): a folder's files, or a lone .py file."""
    if submission.is_file():
        return zip_files([(submission.name, submission)]), submission.name
    return zip_files(submission_files(submission)), ""


def machine_lock() -> str:
    """The load lock every grader on this machine shares (one load phase at a time)."""
    return os.environ.get(LOAD_LOCK_ENV) or str(Path(tempfile.gettempdir()) / "iolab-load.lock")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:30] or "worker"


# ---- the worker's side ------------------------------------------------------------------

def worker_facts(mode: str, lab: str) -> dict:
    """What the submitting machine checks on every worker before it starts the batch."""
    from grader.dockercli import require_engine
    from grader.labspec import load_lab
    facts = {"grader": grader_version(), "host": socket.gethostname(), "problem": ""}
    if facts["grader"] != STARTED_WITH:
        facts["problem"] = (f"its checkout changed since the worker started (grader "
                            f"{STARTED_WITH} then, {facts['grader']} now): restart the worker")
    try:
        facts["lab"] = lab_hash(load_lab(lab))
        if mode == "docker":
            require_engine()
    except UsageError as exc:
        facts["problem"] = str(exc)
    return facts


def grade_on_worker(spec: dict, student: str, packed: bytes, inside: str, key: dict,
                    stop_event: str, origin: str = "") -> dict:
    """One student, on whichever worker the scheduler chose: unpack, grade, pack."""
    from distributed import Event, get_worker
    worker = get_worker()
    spec = job.Spec(**spec)
    where = f"{socket.gethostname()} ({worker.name})"
    on_disk = grader_version()
    mine = on_disk if on_disk == STARTED_WITH else f"{STARTED_WITH} (stale)"
    base = Path(worker.local_directory) / "iolab"
    base.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{slug(student)}-", dir=base))
    try:
        if mine != key["grader"]:
            meta = {"exit_code": None, "seconds": 0.0, "infra": True,
                    "error": f"{where} runs grader {mine}, the batch needs {key['grader']}: "
                             "update that machine's checkout"}
            return {"student": student, "meta": meta, "zip": b"", "graded_on": where}
        unzip(packed, work / "submission")
        submission = work / "submission" / inside if inside else work / "submission"
        env = {PREFIX_ENV: os.environ.get(PREFIX_ENV) or f"iolab-{slug(str(worker.name))}",
               **job.calibration_env(stop_event)}  # this machine's calibration, afresh
        if spec.serial_load:
            env[LOAD_LOCK_ENV] = machine_lock()
        stop, last = Event(stop_event), [0.0, False]

        def should_stop() -> bool:
            if time.monotonic() - last[0] >= STOP_POLL:
                last[0] = time.monotonic()
                try:
                    last[1] = last[1] or stop.is_set()
                except Exception:  # noqa: BLE001 - the scheduler gone: keep grading
                    pass
            return last[1]

        meta = job.run(spec, submission, work / "out", env=env, should_stop=should_stop)
        meta["infra"] = meta["interrupted"]  # no grade: a rerun grades it again
        if origin:  # name the submission as the instructor knows it, not the worker's copy
            meta["error"] = meta["error"].replace(str(submission.resolve()), origin)
        return {"student": student, "meta": meta, "zip": zip_folder(work / "out"),
                "graded_on": where}
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- the submitting machine's side ------------------------------------------------------

class Cluster:
    """A Dask client for one batch: checks the workers, submits, gathers, stops."""

    def __init__(self, address: str, timeout: float = 10.0):
        try:
            from distributed import Client
        except ImportError:
            raise UsageError("--cluster needs Dask distributed: pip install -e '.[cluster]' "
                             "(make venv installs it)")
        for name in ("distributed", "tornado", "asyncio"):  # one clear line, not a traceback
            logging.getLogger(name).setLevel(logging.CRITICAL)
        self.address = address
        try:
            self.client = Client(address, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError alike
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UsageError(f"cannot reach the Dask scheduler at {address} ({why}): start "
                             "`dask scheduler` there, or check the address and port")
        self.futures: dict = {}
        self.stop_event = ""

    def check_workers(self, spec: job.Spec, key: dict, wait: float) -> list[str]:
        """Wait (up to `wait` s) for a worker with the LOAD resource; refuse a worker
        whose grader or lab differs from this checkout. Returns the workers' names."""
        deadline = time.monotonic() + wait
        while True:
            workers = self._workers()
            able = {a: w for a, w in workers.items() if w.get("resources", {}).get(RESOURCE)}
            if able or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if not able:
            raise UsageError(f"the scheduler at {self.address} has no worker with the "
                             f"{RESOURCE} resource: start `dask worker {self.address} "
                             f"--resources {RESOURCE}=1` on each grading machine (make worker)")
        try:
            facts = self.client.run(worker_facts, spec.mode, spec.lab, workers=list(able))
        except Exception as exc:  # noqa: BLE001 - e.g. a worker started outside a checkout
            raise UsageError(f"a worker of {self.address} cannot run the grader "
                             f"({type(exc).__name__}: {str(exc)[:120]}): start it in an iolab "
                             "checkout with `make worker`")
        for address, fact in sorted(facts.items()):
            if fact["problem"]:
                raise UsageError(f"worker {address} on {fact['host']} cannot grade: "
                                 f"{fact['problem']}")
            for what in ("grader", "lab"):
                if fact[what] != key[what]:
                    raise UsageError(
                        f"worker {address} on {fact['host']} has another {what} version "
                        f"({fact[what][:16]}, here {key[what][:16]}): update its checkout "
                        "or stop it")
        return [f"{w.get('name', a)}" for a, w in sorted(able.items())]

    def _workers(self) -> dict:
        try:  # newer distributed lists only the first few workers unless asked for all
            return self.client.scheduler_info(n_workers=-1)["workers"]
        except TypeError:
            return self.client.scheduler_info()["workers"]

    def submit(self, batch_id: str, spec: job.Spec, jobs: list[tuple[str, Path, dict]]) -> None:
        """One task per student: key iolab-<batch>-<student>, one unit of LOAD."""
        from distributed import Event
        self.stop_event = f"iolab-stop-{batch_id}"
        Event(self.stop_event, client=self.client).clear()
        for student, submission, key in jobs:
            packed, inside = pack_submission(submission)
            future = self.client.submit(
                grade_on_worker, spec.to_dict(), student, packed, inside, key, self.stop_event,
                str(submission), key=f"iolab-{batch_id}-{student}", resources={RESOURCE: 1},
                pure=False)
            self.futures[future] = student

    def results(self):
        """(student, result dict) as each finishes; a task that failed outright
        (e.g. it killed worker after worker) is an infra error row."""
        from distributed import as_completed
        for future in as_completed(list(self.futures)):
            student = self.futures.pop(future)
            try:
                yield student, future.result()
            except Exception as exc:  # noqa: BLE001 - recorded, never fatal
                why = str(exc).splitlines()[0] if str(exc) else ""
                yield student, {"student": student, "zip": b"", "graded_on": "",
                                "meta": {"exit_code": None, "seconds": 0.0, "infra": True,
                                         "error": f"the cluster lost this job: "
                                                  f"{type(exc).__name__}: {why}"}}

    def stop(self, grace: float = job.STOP_GRACE + 30) -> None:
        """Ctrl-C or SIGTERM: every worker stops its graders (each tears its stack
        down); wait for that, then forget the rest of the batch."""
        from distributed import Event, wait
        try:
            if self.stop_event:
                Event(self.stop_event, client=self.client).set()
            started = {k for keys in self.client.processing().values() for k in keys}
            running = [f for f in self.futures if f.key in started]
            self.client.cancel([f for f in self.futures if f.key not in started])
            if running:
                wait(running, timeout=grace)
            self.client.cancel(running)
        except Exception:  # noqa: BLE001 - the scheduler may be gone already
            pass

    def close(self) -> None:
        try:
            if self.stop_event:
                from distributed import Event
                Event(self.stop_event, client=self.client).clear()
            self.client.close(timeout=10)
        except Exception:  # noqa: BLE001
            pass
