"""Suite-wide setup.

Ctrl-C tests send SIGINT to wattledger (in this process or in children). A shell that starts
the suite in the background without job control (``make test &``, some CI runners) leaves
SIGINT *ignored*, Python then installs no handler, and children inherit the ignore across
exec: every Ctrl-C test would hang or pass for the wrong reason. Restoring Python's own
handler here makes each child start with the default disposition, as under a terminal.
"""

import signal

signal.signal(signal.SIGINT, signal.default_int_handler)
