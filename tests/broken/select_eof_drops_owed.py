"""Broken on purpose: servers/select_server.py (the reference: framing, partial sends,
and it stops reading while 1 MiB of replies waits) with its EOF step wrong: on
recv() == b'' it closes at once, dropping the replies it still owes."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "servers"))

import lineproto  # noqa: E402

correct_on_readable = lineproto.Connection.on_readable


def on_readable(self, drain=False):
    # the flaw: EOF closes at once, whatever output still waits
    return correct_on_readable(self, drain) and not self.eof


lineproto.Connection.on_readable = on_readable

import select_server  # noqa: E402

lineproto.run(select_server.main)
