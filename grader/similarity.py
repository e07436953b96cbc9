"""Suspiciously similar submissions, for a human to look at (never a grade change).

copydetect (PyPI; the winnowing fingerprints of Schleimer et al., as MOSS uses)
does the work: each student's .py files become one document, tokenized so that
renamed variables and reworded comments still match, fingerprinted once, and
every pair of students is compared, and every student against the reference
servers (servers/*_server.py and lineproto.py, as one). Code the lab hands out (its
starter/ folder) is boilerplate: its fingerprints are removed first, so a class
that kept the starter's skeleton is not flagged for it.

A pair is listed when the copied share of either side's code (after the
boilerplate is taken out) reaches the threshold, with the matching fragments
of both sides (file and lines). It needs the `cluster` extra (copydetect); a
batch without it says so in the report and grades as before.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from grader.fingerprint import submission_files
from grader.paths import REPO

NOISE = 25  # copydetect's noise threshold: matches shorter than this (tokens) never count
GUARANTEE = 30  # matches this long are always found (winnowing window = 6)
MAX_FRAGMENTS = 8
MAX_LINES = 30


@dataclass
class Fragment:
    file: str
    first: int  # line numbers, 1-based
    last: int
    text: str


@dataclass
class Pair:
    a: str  # a student
    b: str  # another student, or REFERENCE (the reference servers)
    share_a: float  # the part of a's code found in b (0..1)
    share_b: float
    fragments_a: list[Fragment] = field(default_factory=list)
    fragments_b: list[Fragment] = field(default_factory=list)

    @property
    def share(self) -> float:
        return max(self.share_a, self.share_b)

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "share_a": round(self.share_a, 3),
                "share_b": round(self.share_b, 3),
                "fragments_a": [f.__dict__ for f in self.fragments_a],
                "fragments_b": [f.__dict__ for f in self.fragments_b]}


class Document:
    """Some files as one text (how they were joined is kept, to name fragments)."""

    def __init__(self, files: list[tuple[str, Path]]):
        self.parts: list[tuple[int, str]] = []  # (offset, file name)
        chunks, offset = [], 0
        for name, path in files:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            text += "" if text.endswith("\n") else "\n"
            self.parts.append((offset, name))
            chunks.append(text)
            offset += len(text)
        self.text = "".join(chunks)

    def pieces(self, start: int, end: int):
        """A matched range cut at the files' borders: (file, its offset, start, end)."""
        bounds = [o for o, _ in self.parts[1:]] + [len(self.text)]
        for (offset, name), stop in zip(self.parts, bounds):
            lo, hi = max(start, offset), min(end, stop)
            if lo < hi:
                yield name, offset, lo, hi

    def fragments(self, slices) -> list[Fragment]:
        out: list[Fragment] = []
        ranges = sorted(zip(slices[0].tolist(), slices[1].tolist()))
        for name, base, start, end in (p for r in ranges for p in self.pieces(*r)):
            first = self.text.count("\n", base, start) + 1
            last = first + self.text.count("\n", start, max(start, end - 1))
            if out and out[-1].file == name and first <= out[-1].last + 1:
                out[-1].last = max(out[-1].last, last)
            else:
                out.append(Fragment(name, first, last, ""))
        for f in out[:MAX_FRAGMENTS]:
            base = next((o for o, n in self.parts if n == f.file), 0)
            lines = self.text[base:].split("\n")[f.first - 1:f.last]
            cut = lines[:MAX_LINES] + ([f"... ({len(lines) - MAX_LINES} more lines)"]
                                       if len(lines) > MAX_LINES else [])
            f.text = "\n".join(cut)
        return out[:MAX_FRAGMENTS]


def python_files(folder: Path) -> list[tuple[str, Path]]:
    return [(n, p) for n, p in submission_files(folder) if n.endswith(".py")]


REFERENCE = "reference servers (servers/)"


def reference_files() -> dict[str, list[tuple[str, Path]]]:
    """The reference servers as one document: a student who took select_server.py and
    its lineproto.py is flagged for both together."""
    servers = REPO / "servers"
    found = sorted(servers.glob("*_server.py")) + [servers / "lineproto.py"]
    return {REFERENCE: [(f"servers/{p.name}", p) for p in found if p.is_file()]}


def find_similar(submissions: dict[str, Path], boilerplate: list[Path],
                 threshold: float = 0.5) -> list[Pair]:
    """Every pair of students, and every student against the reference servers,
    whose copied share reaches `threshold`, most similar first."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # copydetect imports matplotlib
    logging.getLogger("copydetect").setLevel(logging.ERROR)
    from copydetect import CodeFingerprint, compare_files

    window = GUARANTEE - NOISE + 1
    skip = set()
    for folder in boilerplate:
        skip |= set(_fingerprint(CodeFingerprint, Document(python_files(folder)), NOISE,
                                 1, []).hashes)
    skip_hashes = sorted(skip)

    def fingerprint(files):
        doc = Document(files)
        return doc, _fingerprint(CodeFingerprint, doc, NOISE, window, skip_hashes)

    students = {s: fingerprint(python_files(p)) for s, p in sorted(submissions.items())}
    references = {r: fingerprint(files) for r, files in reference_files().items()}
    pairs = []
    names = list(students)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pairs.append(_compare(compare_files, a, students[a], b, students[b], threshold))
        for ref, fp in references.items():  # how much of a reference one used is no flag:
            pairs.append(_compare(compare_files, a, students[a], ref, fp, threshold, False))
    flagged = [p for p in pairs if p.share >= threshold]
    return sorted(flagged, key=lambda p: (-p.share, p.a, p.b))


def _fingerprint(cls, doc: Document, k: int, window: int, boilerplate: list):
    return cls(f"{id(doc)}.py", k, window, boilerplate, fp=io.StringIO(doc.text))


def _compare(compare_files, a, fa, b, fb, threshold: float, both: bool = True) -> Pair:
    (doc_a, print_a), (doc_b, print_b) = fa, fb
    if not print_a.hashes or not print_b.hashes:
        return Pair(a, b, 0.0, 0.0)
    _, (share_a, share_b), (slices_a, slices_b) = compare_files(print_a, print_b)
    pair = Pair(a, b, float(share_a), float(share_b) if both else 0.0)
    if pair.share >= threshold:
        pair.fragments_a = doc_a.fragments(slices_a)
        pair.fragments_b = doc_b.fragments(slices_b)
    return pair
