"""Broken on purpose (always_writable): see flawed.py."""

from flawed import serve

serve(flaw="always_writable")
