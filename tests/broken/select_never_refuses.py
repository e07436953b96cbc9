"""Broken on purpose for robust.refuse_past_fd_setsize: servers/select_server.py with
its one refusal taken out (it never compares an accepted fd with FD_SETSIZE), so the
first fd of 1024 or more reaches select(), which raises ValueError, and the server
dies with every client. Nothing else differs from the reference."""

import sys
from pathlib import Path

SERVERS = Path(__file__).resolve().parents[2] / "servers"
REFUSAL = "FD_SETSIZE = 512 if WINDOWS else 1024"
source = (SERVERS / "select_server.py").read_text()
assert REFUSAL in source, "servers/select_server.py changed: update this flaw"
sys.path.insert(0, str(SERVERS))
sys.argv[0] = str(SERVERS / "select_server.py")
code = compile(source.replace(REFUSAL, "FD_SETSIZE = 1 << 30  # the flaw: never refuses"),
               sys.argv[0], "exec")
exec(code, {"__name__": "__main__", "__file__": sys.argv[0]})
