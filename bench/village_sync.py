"""``python -m bench.village_sync HOME ENDPOINT TIMEOUT``: one session of a village, as
``tongban node sync --once --endpoint`` runs it (the node's home opened, its link settings
with the endpoint given, :func:`sync.link.transport.sync_once`), that also says what the
session sent when it fails: the last line of its output is a JSON object with ``ok``,
``error``, ``sent`` and ``received`` (the bytes of the session's messages, ZMTP frames, as
the village sent and received them, counted whether the session ended well or not),
``file_chunks`` (the bytes of file chunks it sent, likewise) and, for a session that ended
well, what its summary counts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sync.link.transport import LinkSettings, sync_once
from tongban.homes import open_home, upstreams


def main(home: Path, endpoint: str, timeout: float) -> int:
    with open_home(home) as opened:
        kbit = getattr(opened.settings, "files_up_kbit", 0)
        opened.settings = LinkSettings(parent=endpoint, **({"files_up_kbit": kbit} if kbit else {}))
        result = sync_once(opened, upstreams(opened), timeout=timeout)
    summary = result.summary
    said = {
        "ok": result.ok,
        "error": "" if result.error is None else result.error.code.value,
        "seconds": result.seconds,
        "sent": result.traffic.sent,
        "received": result.traffic.received,
        "file_chunks": getattr(result.traffic, "file_chunks", None),
        "up": summary.up,
        "files_up": getattr(summary, "files_up", 0),
        "file_bytes_sent": getattr(summary, "file_bytes_sent", 0),
    }
    print(json.dumps(said), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
