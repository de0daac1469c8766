"""The baseline of the files benchmark: the same bytes over a bare TCP connection.

``python -m bench.baretcp sink HOST PORT BYTES`` listens, prints ``listening``, takes one
connection, reads ``BYTES`` bytes and answers one byte. ``python -m bench.baretcp send HOST
PORT FILE…`` connects, sends the files one after the other and waits for that byte; it
prints ``{"seconds": …, "bytes": …}``: from before the connection to the answer, so the
handshake and the last byte's way back are in it, as a sync session's are. Every wait is
bounded by :data:`TIMEOUT`.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

TIMEOUT = 900.0
BLOCK = 64 * 1024


def sink(host: str, port: int, expected: int) -> None:
    with socket.create_server((host, port)) as server:
        server.settimeout(TIMEOUT)
        print("listening", flush=True)
        conn, _ = server.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            got = 0
            while got < expected:
                block = conn.recv(BLOCK)
                if not block:
                    sys.exit(f"the sender closed after {got} of {expected} bytes")
                got += len(block)
            conn.sendall(b"k")
    print(json.dumps({"bytes": got}), flush=True)


def send(host: str, port: int, files: list[Path]) -> None:
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=TIMEOUT) as conn:
        sent = 0
        for path in files:
            data = path.read_bytes()
            conn.sendall(data)
            sent += len(data)
        if conn.recv(1) != b"k":
            sys.exit("no answer from the sink")
    print(json.dumps({"seconds": time.monotonic() - started, "bytes": sent}), flush=True)


def main(argv: list[str]) -> None:
    if len(argv) >= 4 and argv[0] == "sink":
        sink(argv[1], int(argv[2]), int(argv[3]))
    elif len(argv) >= 3 and argv[0] == "send":
        send(argv[1], int(argv[2]), [Path(a) for a in argv[3:]])
    else:
        sys.exit("usage: python -m bench.baretcp sink HOST PORT BYTES | send HOST PORT FILE…")


if __name__ == "__main__":
    main(sys.argv[1:])
