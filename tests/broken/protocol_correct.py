"""The protocol_flawed.py server with no flaw: it must pass every network check."""

from protocol_flawed import serve

serve(flaw="none")
