"""Signed records and their movement: codec, envelope, keys, record log, sync sessions.

This is the only package that imports ``cbor2`` (in :mod:`sync.record.codec`) and ``nacl``.
"""

import os

# Nodes connect to the endpoints they are configured with and serve on their own
# addresses; nothing resolves names through eventlet's green DNS, whose import of
# dnspython costs every process about 15 MB of its memory. Set before any module here
# imports eventlet (through nameko); a process that imported it earlier keeps its own.
os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")
