"""Broken on purpose (fork_no_reap): see blocking.py."""

from blocking import serve

serve("fork", flaw="no_reap")
