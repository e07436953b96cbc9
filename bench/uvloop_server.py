"""The uvloop baseline: servers/asyncio_server.py, unchanged, on uvloop's event loop.

uvloop is installed only for the benchmark (`make bench` pip-installs it).
"""

import asyncio
import runpy
import sys
from pathlib import Path

import uvloop

SERVERS = Path(__file__).resolve().parent.parent / "servers"

if __name__ == "__main__":
    sys.path.insert(0, str(SERVERS))
    sys.argv[0] = "uvloop_server"  # the name lineproto logs
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    runpy.run_path(str(SERVERS / "asyncio_server.py"), run_name="__main__")
