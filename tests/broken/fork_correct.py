"""Not broken: the fork server blocking.py's flaws are taken from."""

from blocking import serve

serve("fork", flaw="none")
