"""Broken on purpose (thread_hangs_at_ceiling): see blocking.py."""

from blocking import serve

serve("thread", flaw="hangs_at_ceiling")
