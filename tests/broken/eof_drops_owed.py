"""Broken on purpose (eof_drops_owed): see flawed.py. The lab-3 starter with its
framing and partial sends fixed but not its EOF step: on recv() == b'' it closes
at once, and the replies it still owes are lost."""

from flawed import serve

serve(flaw="eof_drops_owed")
