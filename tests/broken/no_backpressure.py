"""The flawed.py server with one flaw: it reads on while its replies pile up for a
client that never reads them (its memory grows with what the client sends)."""

from flawed import serve

serve(flaw="no_backpressure")
