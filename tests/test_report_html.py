"""report.html of a real run, opened in headless Chromium: it renders, offline,
with its check table and its load charts (a screenshot, decoded and looked at).

Chromium comes from Debian (`apt-get install -y chromium`): under CI=true this
test installs it when it is missing; elsewhere it skips without it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from pathlib import Path

import pytest
from conftest import REPO, lab_variant, quiet

from grader import charts
from grader.results import write_all
from grader.runner import grade

pytestmark = pytest.mark.slow

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@pytest.fixture(scope="session")
def chromium() -> str:
    browser = find_browser()
    if browser:
        return browser
    if os.environ.get("CI") != "true":
        pytest.skip("no chromium (CI=true installs it: apt-get install -y chromium)")
    # Two xdist workers may both want it: one installs, the other waits and finds it
    # (two apt-gets at once: "Could not get lock /var/lib/dpkg/lock-frontend").
    with open(Path(tempfile.gettempdir()) / "iolab-chromium-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not find_browser():
            apt_get_chromium()
    browser = find_browser()
    if not browser:
        pytest.fail("apt-get installed chromium but no chromium binary is on PATH")
    return browser


def apt_get_chromium() -> None:
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        proc = subprocess.run(sudo + cmd, capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode != 0 and cmd[1] == "install":
            pytest.fail(f"CI=true and chromium is missing; `{' '.join(cmd)}` failed: "
                        f"{proc.stderr.strip()[-500:]}")


def read_png(path: Path) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows of RGB(A) bytes, bytes per pixel): enough of PNG for the
    8-bit RGB/RGBA images Chromium writes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = previous[i], previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows, bpp


def pixel_colours(rows: list[bytes], bpp: int) -> Counter:
    """How many pixels of each RGB colour, in every other row (plenty, and half the work):
    counted once, then each colour asked of the few thousand distinct ones."""
    return Counter(bytes(row[i:i + 3]) for row in rows[::2] for i in range(0, len(row), bpp))


def colour_count(seen: Counter, hex_colour: str, tolerance: int = 8) -> int:
    want = bytes.fromhex(hex_colour.lstrip("#"))
    return sum(n for c, n in seen.items() if all(abs(c[k] - want[k]) <= tolerance for k in range(3)))


@pytest.fixture(scope="module")
def real_report(tmp_path_factory):
    """A real local run of the starter (some checks fail) against lab-3's select
    exercise with a 4 s load, so the page has verdicts, reasons and both charts
    (Locust samples its history once a second: 2 s can leave a line one point long)."""
    lab = lab_variant(tmp_path_factory.mktemp("labs"), "lab-3", ["select"], duration=4)
    report = grade(lab, REPO / "labs" / "lab-3" / "starter", "local",
                   "linux", tmp_path_factory.mktemp("results"), progress=quiet)
    write_all(report)
    return report


def test_report_html_renders_in_headless_chromium(chromium, real_report):
    page = real_report.folder / "report.html"
    shot = real_report.folder / "report.png"
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--window-size=1200,2200",
                           f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 30_000, proc.stderr[-2000:]
    width, height, rows, bpp = read_png(shot)
    assert (width, height) == (1200, 2200)
    sample = [row[i] for row in rows[::16] for i in range(0, len(row), bpp * 16)]
    mean = sum(sample) / len(sample)
    variance = sum((v - mean) ** 2 for v in sample) / len(sample)
    assert variance > 200, f"a blank page? pixel variance {variance:.0f}"
    seen = pixel_colours(rows, bpp)
    assert colour_count(seen, "#1a7f37") > 500, "no green PASS badges"
    assert colour_count(seen, "#cf222e") > 200, "no red FAIL badges"
    assert colour_count(seen, charts.SUBMISSION) > 100, "no submission line in the charts"
    assert colour_count(seen, charts.REFERENCE) > 50, "no reference line in the charts"
    print(f"screenshot: {shot}")
