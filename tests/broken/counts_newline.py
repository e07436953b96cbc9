"""Broken on purpose (counts_newline): see flawed.py."""

from flawed import serve

serve(flaw="counts_newline")
