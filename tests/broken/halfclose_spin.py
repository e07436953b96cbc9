"""Broken on purpose (halfclose_spin): see flawed.py. After the client half-closes
it keeps asking for EVENT_READ while the replies it owes wait to be sent: a
half-closed socket is always readable, so the loop spins until the client reads."""

from flawed import serve

serve(flaw="halfclose_spin")
