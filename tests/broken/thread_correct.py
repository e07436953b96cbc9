"""Not broken: the thread server blocking.py's flaws are taken from."""

from blocking import serve

serve("thread", flaw="none")
