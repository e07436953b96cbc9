"""Broken on purpose (no_framing): see flawed.py."""

from flawed import serve

serve(flaw="no_framing")
