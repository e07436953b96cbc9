"""Broken on purpose (partial_sends): see flawed.py."""

from flawed import serve

serve(flaw="partial_sends")
