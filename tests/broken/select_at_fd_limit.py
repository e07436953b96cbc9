"""Broken on purpose for the poll/epoll/selectors exercises: servers/select_server.py
(correct, but select() cannot watch fd 1024 or above: it refuses those clients)."""

import runpy
import sys
from pathlib import Path

SERVERS = Path(__file__).resolve().parents[2] / "servers"
sys.path.insert(0, str(SERVERS))
sys.argv[0] = str(SERVERS / "select_server.py")
runpy.run_path(sys.argv[0], run_name="__main__")
