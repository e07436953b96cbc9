"""The flawed.py server with no flaw: it must pass every network check."""

from flawed import serve

serve(flaw="none")
