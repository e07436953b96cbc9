"""The protocol_flawed.py server with one flaw: blocking_call."""

from protocol_flawed import serve

serve(flaw="blocking_call")
