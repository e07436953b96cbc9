"""labs/<lab>/lab.yaml: load it, check it against the schema, point at mistakes.

A lab is data (Labtainers' habit): its exercises, the model each requires,
the OS profiles it runs on, its checks with points and visibility, its load
phase and its reference solution. Every mistake is reported as
"lab.yaml line N: <what is wrong>" so an instructor can fix it at once; a
check's parameters are validated against what the check declares in the
registry (grader/checks/), so a typo is an error, never a silent default.

A check an OS profile makes impossible to pass is said so on its entry, with
the reason, and is then not run under that profile (reported unavailable):

    - check: robust.fd_limit
      points: 1
      unavailable: {windows: "select() there takes at most 512 sockets"}

Blocks may be written once and reused, as compose.yaml does: top-level `x-`
keys are ignored, `<<: *anchor` merges a mapping, and a list alias inside a
list is spliced in (`checks: [*battery, {check: robust.fd_limit, points: 1}]`).

An exercise in a folder of its own (`path: poll`) may import a module the
student writes once at the top of the submission (`shared: [linebuf.py]`): the
grader runs it from a copy of its folder with those files beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.constructor import SafeConstructor

from grader.checks import REGISTRY, Stage
from grader.errors import UsageError
from grader.paths import LABS, REPO, shown
from servers.platforms import MODELS, OSES, where

VISIBILITY = ("visible", "hidden", "after_due_date", "after_published")
# What relative thresholds are judged against (grader/calibration.py); default: the
# reference when the exercise names one, else the yardstick (an echo server).
CALIBRATIONS = ("reference", "yardstick")
LOAD_KEYS = {"users": int, "spawn_rate": (int, float), "duration": (int, float),
             "line_size": int, "pipeline": int, "workers": int}
# The server's sandbox per exercise (lab.yaml `limits:`). The defaults leave
# room for the fork and thread models at the exercise's concurrency.
DEFAULT_LIMITS = {"memory": "512m", "cpus": 1.0, "pids": 512, "nofile": 4096, "timeout": 300}
LIMIT_KINDS = {"memory": (str, int), "cpus": (int, float), "pids": int, "nofile": int,
               "timeout": (int, float)}
KINDS = ("server", "module")  # module: a Python module tested by pytest (lab-0)
ENTRY_KEYS = ("check", "points", "title", "visibility", "required", "expect", "unavailable")


def threshold_params() -> dict:
    """What `load: thresholds:` may set: the parameters of the load checks."""
    return {name: p for spec in REGISTRY.values() if spec.stage == Stage.LOAD
            for name, p in spec.params.items()}


@dataclass
class CheckEntry:
    """One check of an exercise, as lab.yaml gives it (params: only those it set)."""

    check: str
    points: float
    title: str
    visibility: str = "visible"
    required: bool = True
    params: dict = field(default_factory=dict)
    expect: str = "pass"  # "fail": the check fails by design for this model (a lesson)
    # {os: why}: OS profiles under which this check cannot be passed, so it is not run
    # there (reported unavailable with the reason), e.g. 1100 connections under windows,
    # where select() takes at most 512 sockets
    unavailable: dict[str, str] = field(default_factory=dict)

    def runs_on(self, os_name: str) -> bool:
        return os_name not in self.unavailable

    @property
    def spec(self):
        return REGISTRY[self.check]

    @property
    def stage(self) -> Stage:
        return self.spec.stage


@dataclass
class Exercise:
    id: str
    title: str
    model: str
    oses: list[str]
    checks: list[CheckEntry]
    path: str = "."
    entry: str = "server.py"
    reference: str | None = None
    load: dict | None = None
    limits: dict = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    kind: str = "server"  # "server": run entry and talk to it; "module": pytest imports entry
    shared: list[str] = field(default_factory=list)  # top-level files graded with it (linebuf.py)


@dataclass
class Lab:
    name: str
    title: str
    folder: Path
    exercises: list[Exercise]
    starter: Path


class _File:
    """The lab.yaml being read: errors name it and the line of the node at fault."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, node: yaml.Node | None, message: str) -> UsageError:
        line = f" line {node.start_mark.line + 1}" if node is not None else ""
        return UsageError(f"{self.path}{line}: {message}")


def lab_names(labs: Path = LABS) -> list[str]:
    """Every folder of `labs` with a lab.yaml (none where there are no labs: the stack's
    grader container has only grader/ and servers/)."""
    if not labs.is_dir():
        return []
    return sorted(p.name for p in labs.iterdir() if (p / "lab.yaml").is_file())


def load_lab(name: str, labs: Path = LABS) -> Lab:
    path = labs / name / "lab.yaml"
    if not path.is_file():
        known = ", ".join(lab_names(labs)) or "none"
        raise UsageError(f"unknown lab {name!r}: there is no {shown(path)} (labs: {known})")
    f = _File(shown(path))
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise UsageError(f"{f.path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})")
    _merge_keys(f, root)
    top = _mapping(f, root, "the file", required=("lab", "title", "exercises"), extensions=True)
    if _scalar(f, top["lab"]) != name:
        raise f.fail(top["lab"], f"lab: says {top['lab'].value!r}, the folder is {name!r}")
    exercises = [_exercise(f, node) for node in _sequence(f, top["exercises"])]
    ids = [ex.id for ex in exercises]
    if len(set(ids)) != len(ids):
        raise f.fail(top["exercises"], f"exercise ids must be unique, got {ids}")
    return Lab(name, _scalar(f, top["title"]), path.parent, exercises, path.parent / "starter")


def _exercise(w: _File, node: yaml.Node) -> Exercise:
    m = _mapping(w, node, "an exercise", required=("id", "title", "model", "checks"),
                 optional=("path", "entry", "os", "reference", "load", "limits", "kind",
                           "shared"))
    kind = _scalar(w, m["kind"]) if "kind" in m else "server"
    if kind not in KINDS:
        raise w.fail(m["kind"], f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    model = _scalar(w, m["model"])
    if model not in MODELS:
        raise w.fail(m["model"], f"unknown model {model!r}; models: {', '.join(MODELS)}")
    oses = [_scalar(w, n) for n in _sequence(w, m["os"])] if "os" in m else where(model)
    for os_name in oses:
        if os_name not in OSES:
            raise w.fail(m["os"], f"unknown OS {os_name!r}; choose from {', '.join(OSES)}")
    checks = [_check(w, n, oses) for n in _sequence(w, m["checks"])]
    load = _load(w, m["load"]) if "load" in m else None
    if load is None and any(c.stage == Stage.LOAD for c in checks):
        raise w.fail(m["checks"], "load.* checks need a load: section in the exercise")
    reference = _scalar(w, m["reference"]) if "reference" in m else None
    if reference and not (REPO / reference).exists():
        raise w.fail(m["reference"], f"reference {reference} does not exist")
    if (load or {}).get("calibration") == "reference" and not reference:
        raise w.fail(m["load"], "load.calibration: reference needs the exercise's reference: "
                     "name it, or use calibration: yardstick")
    return Exercise(
        id=_scalar(w, m["id"]), title=_scalar(w, m["title"]), model=model, oses=oses,
        checks=checks, path=_scalar(w, m["path"]) if "path" in m else ".",
        entry=_scalar(w, m["entry"]) if "entry" in m else "server.py",
        reference=reference, load=load,
        limits=_limits(w, m["limits"]) if "limits" in m else dict(DEFAULT_LIMITS),
        kind=kind, shared=_shared(w, m["shared"]) if "shared" in m else [],
    )


def _shared(w: _File, node: yaml.Node) -> list[str]:
    """`shared: [linebuf.py]`: files at the top of the submission folder that the
    exercise's server imports; the grader runs the server with them beside it."""
    names = [_scalar(w, n) for n in _sequence(w, node)]
    for name in names:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise w.fail(node, f"shared: {name!r} must be a file name at the top of the "
                         "submission folder (no folders), e.g. linebuf.py")
    return names


def _check(w: _File, node: yaml.Node, oses: list[str]) -> CheckEntry:
    m = _mapping(w, node, "a check", required=("check", "points"), optional=None)
    name = _scalar(w, m["check"])
    if name not in REGISTRY:
        raise w.fail(m["check"], f"unknown check {name!r}; known: {', '.join(sorted(REGISTRY))}"
                     " (python -m grader checks lists them)")
    spec = REGISTRY[name]
    data = {k: yaml.safe_load(yaml.serialize(v)) for k, v in m.items()}
    points = data["points"]
    if not isinstance(points, (int, float)) or isinstance(points, bool) or points < 0:
        raise w.fail(m["points"], f"points must be a number ≥ 0, got {points!r}")
    visibility = data.get("visibility", "visible")
    if visibility not in VISIBILITY:
        raise w.fail(m.get("visibility"), f"visibility must be one of {', '.join(VISIBILITY)}")
    expect = data.get("expect", "pass")
    if expect not in ("pass", "fail"):
        raise w.fail(m.get("expect"), f"expect must be pass or fail, got {expect!r}")
    unavailable = _unavailable(w, m["unavailable"], oses) if "unavailable" in m else {}
    params = {k: v for k, v in data.items() if k not in ENTRY_KEYS}
    for key in spec.unknown(params):
        raise w.fail(m[key], f"unknown parameter {key!r} for {name} "
                     f"(known: {', '.join(spec.params) or 'none'})")
    for key, param in spec.params.items():
        if param.required and key not in params:
            raise w.fail(node, f"{name} needs the parameter {key!r} ({param.help})")
        if key in params and not param.accepts(params[key]):
            raise w.fail(m[key], f"parameter {key!r} of {name} must be "
                         f"{_kind(param.type)}, got {params[key]!r}")
    return CheckEntry(check=name, points=float(points), title=data.get("title", spec.title),
                      visibility=visibility, required=bool(data.get("required", True)),
                      params=params, expect=expect, unavailable=unavailable)


def _unavailable(w: _File, node: yaml.Node, oses: list[str]) -> dict[str, str]:
    """`unavailable: {windows: "why"}`: where the check cannot be passed, and why."""
    if not isinstance(node, yaml.MappingNode) or not node.value:
        raise w.fail(node, "unavailable: must map an OS to the reason the check cannot be "
                     "passed there, e.g. {windows: \"select() takes at most 512 sockets\"}")
    reasons = {}
    for key, value in node.value:
        if key.value not in OSES:
            raise w.fail(key, f"unavailable: unknown OS {key.value!r}; choose from "
                         f"{', '.join(OSES)}")
        if key.value not in oses:
            raise w.fail(key, f"unavailable: the exercise does not run on {key.value} "
                         f"(it runs on {', '.join(oses)})")
        if not isinstance(value, yaml.ScalarNode) or not str(value.value).strip() \
                or value.tag != "tag:yaml.org,2002:str":
            raise w.fail(value, f"unavailable: {key.value}: give the reason as text")
        reasons[key.value] = str(value.value).strip()
    return reasons


def _kind(kind: type) -> str:
    return {int: "a whole number", float: "a number", str: "text", bool: "true or false"}.get(
        kind, kind.__name__)


def _load(w: _File, node: yaml.Node) -> dict:
    m = _mapping(w, node, "load", required=("users", "duration"),
                 optional=tuple(LOAD_KEYS) + ("thresholds", "calibration"))
    data = {k: yaml.safe_load(yaml.serialize(v)) for k, v in m.items()}
    if "calibration" in data and data["calibration"] not in CALIBRATIONS:
        raise w.fail(m["calibration"], f"load.calibration must be one of "
                     f"{', '.join(CALIBRATIONS)}, got {data['calibration']!r}")
    for key, kind in LOAD_KEYS.items():
        if key in data and (not isinstance(data[key], kind) or data[key] <= 0):
            raise w.fail(m[key], f"load.{key} must be a positive number, got {data[key]!r}")
    known = threshold_params()
    thresholds = data.get("thresholds") or {}
    if not isinstance(thresholds, dict):
        raise w.fail(m["thresholds"], "load.thresholds must be a mapping")
    for key, value in thresholds.items():
        if key not in known:
            raise w.fail(m["thresholds"], f"unknown threshold {key!r}; known: {', '.join(known)}")
        if not known[key].accepts(value):
            raise w.fail(m["thresholds"], f"threshold {key!r} must be {_kind(known[key].type)}, "
                         f"got {value!r}")
    return data


def memory_bytes(value: str | int) -> int:
    """"256m" -> 268435456 (docker's units: b, k, m, g); a bare number is bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([bkmg]?)b?\s*", str(value).lower())
    if not match:
        raise ValueError(value)
    return int(match[1]) * 1024 ** "bkmg".index(match[2] or "b")


def _limits(w: _File, node: yaml.Node) -> dict:
    m = _mapping(w, node, "limits", optional=tuple(LIMIT_KINDS))
    data = {k: yaml.safe_load(yaml.serialize(v)) for k, v in m.items()}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, LIMIT_KINDS[key]):
            raise w.fail(m[key], f"limits.{key} must be a number, got {value!r}")
        if key == "memory":
            try:
                size = memory_bytes(value)
            except ValueError:
                raise w.fail(m[key], f"limits.memory must be a size like 256m or 1g, got {value!r}")
            if size < 16 * 1024 ** 2:
                raise w.fail(m[key], f"limits.memory must be at least 16m, got {value!r}")
        elif value <= 0:
            raise w.fail(m[key], f"limits.{key} must be a positive number, got {value!r}")
    return {**DEFAULT_LIMITS, **data}


def _mapping(w, node, what, required=(), optional=(), extensions=False
             ) -> dict[str, yaml.Node]:
    """A mapping's keys and value nodes; `optional=None` allows any key,
    `extensions` skips compose-style `x-` keys (blocks written once, reused)."""
    if not isinstance(node, yaml.MappingNode):
        raise w.fail(node, f"{what} must be a mapping")
    result = {}
    for key_node, value in node.value:
        key = key_node.value
        if extensions and isinstance(key, str) and key.startswith("x-"):
            continue
        if optional is not None and key not in required and key not in optional:
            raise w.fail(key_node, f"unknown key {key!r} in {what}")
        result[key] = value
    for key in required:
        if key not in result:
            raise w.fail(node, f"{what} needs a {key!r} key")
    return result


def _merge_keys(w: _File, node: yaml.Node, seen: set | None = None) -> None:
    """Resolve `<<:` merge keys in place, everywhere (the node keeps its line)."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        try:
            SafeConstructor().flatten_mapping(node)
        except yaml.constructor.ConstructorError as exc:
            raise UsageError(f"{w.path} line {exc.problem_mark.line + 1}: {exc.problem}")
        for _key, value in node.value:
            _merge_keys(w, value, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _merge_keys(w, item, seen)


def _sequence(w: _File, node: yaml.Node) -> list[yaml.Node]:
    """A list's items; a list inside it (an alias to a list written once) is spliced in."""
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise w.fail(node, "expected a non-empty list")
    items = []
    for item in node.value:
        items += _sequence(w, item) if isinstance(item, yaml.SequenceNode) else [item]
    return items


def _scalar(w: _File, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.value == "":
        raise w.fail(node, "expected a non-empty value")
    return node.value
