"""The protocol_flawed.py server with one flaw: no_flow_control."""

from protocol_flawed import serve

serve(flaw="no_flow_control")
