"""Broken on purpose (eof_ignored): see flawed.py."""

from flawed import serve

serve(flaw="eof_ignored")
