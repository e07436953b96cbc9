"""The protocol_flawed.py server with one flaw: no_idle_timeout."""

from protocol_flawed import serve

serve(flaw="no_idle_timeout")
