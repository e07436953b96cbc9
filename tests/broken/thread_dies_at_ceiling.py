"""Broken on purpose (thread_dies_at_ceiling): see blocking.py."""

from blocking import serve

serve("thread", flaw="dies_at_ceiling")
