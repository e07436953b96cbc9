"""Module checks: pytest tests a student's Python module (lab-0, threading.local).

`module.pytest` runs one hidden pytest file (optionally one test of it,
`select:`) in a subprocess, with a timeout, in a fresh temporary copy of the
submission and of the tests: the submission can write only into that copy.
The verdict comes from the JUnit XML pytest writes (`--junitxml`), never from
its stdout. An assertion message "expected X, got Y" becomes the Outcome's
expected/got; the lab.yaml entry's `hint:` is the hint.

Module exercises run in this subprocess sandbox on the host in both modes
(docker and local): the module needs no network, so no server is started.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from xml.etree import ElementTree as ET

from grader.checks.registry import CheckContext, Param, Stage, check
from grader.outcome import Outcome
from grader.paths import REPO

EXPECTED_GOT = re.compile(r"expected (.+?),? got (.+)", re.S)


def _message(case: ET.Element) -> str:
    """The first line a student should read: the assertion's own message."""
    for tag in ("failure", "error"):
        node = case.find(tag)
        if node is not None:
            text = node.get("message") or node.text or ""
            text = text.split("\nassert ")[0].strip()  # drop pytest's rewritten expression
            return re.sub(r"^(AssertionError|Failed): ", "", text)
    return ""


def outcome_of(cases: list[ET.Element], hint: str, what: str) -> Outcome:
    """Outcome for the testcases of one run: passed when all passed."""
    failed = [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
    if not cases:
        return Outcome.error(f"pytest ran no test for {what}",
                             "the check's tests:/select: in lab.yaml name no test")
    if not failed:
        return Outcome(True, figure=f"{len(cases)}/{len(cases)} tests passed")
    first = _message(failed[0])
    match = EXPECTED_GOT.match(first)
    figure = f"{len(cases) - len(failed)}/{len(cases)} tests passed"
    name = failed[0].get("name", "?")
    if match:
        return Outcome(False, figure=figure, expected=match[1].strip(),
                       got=f"{match[2].strip()} (in {name})", hint=hint)
    return Outcome(False, figure=figure, expected=f"{name} to pass",
                   got=first[:600] or "it failed", hint=hint)


@check("module.pytest", Stage.MODULE, "hidden pytest tests of your module",
       Param("tests", str, None, "the pytest file, relative to the checkout", required=True),
       Param("select", str, "", "one test of that file (pytest node name)"),
       Param("timeout", float, 60.0, "seconds the tests may take"),
       Param("hint", str, "", "what to try when they fail"))
def pytest_module(ctx: CheckContext) -> Outcome:
    tests = REPO / str(ctx.param("tests"))
    if not tests.is_file():
        return Outcome.error(f"the tests {tests} do not exist", "fix tests: in lab.yaml")
    if ctx.submission is None:
        return Outcome.error("no submission was staged for a module check")
    timeout = float(ctx.param("timeout"))
    hint = str(ctx.param("hint"))
    with tempfile.TemporaryDirectory(prefix="iolab-module-") as tmp:
        work = Path(tmp)
        shutil.copytree(ctx.submission, work / "submission")
        (work / "checks").mkdir()
        shutil.copy2(tests, work / "checks" / tests.name)
        (work / "pytest.ini").write_text("[pytest]\n")  # keep the repo's config out
        report = work / f"junit-{os.urandom(6).hex()}.xml"
        node = f"checks/{tests.name}" + (f"::{ctx.param('select')}"
                                         if ctx.param("select") else "")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(PYTHONPATH=str(work / "submission"), PYTHONDONTWRITEBYTECODE="1")
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 "--rootdir", str(work), "-c", str(work / "pytest.ini"),
                 f"--junitxml={report}", "-o", "junit_family=xunit1", node],
                cwd=work, env=env, capture_output=True, timeout=timeout,
                stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return Outcome(False, expected=f"the tests to finish within {timeout:g} s",
                           got="they timed out", hint=hint or "a deadlock, or a loop "
                           "that waits for a thread that never ends?")
        if not report.is_file():
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-2:]
            return Outcome.error(f"pytest wrote no report (exit {proc.returncode}): "
                                 f"{' | '.join(tail)}")
        try:
            root = ET.parse(report).getroot()
        except ET.ParseError as exc:
            return Outcome.error(f"pytest's report is not valid XML: {exc}")
    return outcome_of(root.findall(".//testcase"), hint, node)
