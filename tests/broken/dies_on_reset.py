"""Broken on purpose (dies_on_reset): see flawed.py."""

from flawed import serve

serve(flaw="dies_on_reset")
