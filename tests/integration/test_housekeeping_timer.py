"""The node's web service keeps its file store tidy by itself, on its timer.

``[files] housekeep_seconds`` (ten minutes by default) is set to one second here: the
running service sweeps an orphan older than an hour without anyone asking, and leaves one
that may still be about to get its record.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from core.clock import FixedClock, SystemClock
from node.files import ORPHAN_AGE
from sync.record.filestore import beside
from tests.helpers import CITY, TOWN, make_network, wait_for
from tests.integration.webnode import serve
from tongban.demo_files import set_section


def test_the_web_service_sweeps_an_old_orphan_on_its_timer(tmp_path: Path) -> None:
    net = make_network(tmp_path, FixedClock(t=SystemClock().now() - 3600, step=1))
    net.add_node(TOWN, "town", CITY)
    home = net.node_dir(TOWN)
    set_section(home / "node.toml", "files", {"housekeep_seconds": 1})
    files = beside(home / "node.db")
    old, fresh = files.put(b"a page whose record never came"), files.put(b"a page just stored")
    long_ago = time.time() - 2 * ORPHAN_AGE
    os.utime(files.path(old), (long_ago, long_ago))
    with serve(home) as web:
        wait_for(lambda: not files.has(old), "the housekeeping timer to sweep the old orphan", 30)
        assert files.has(fresh)  # younger than an hour: its record may still come
        assert web.proc.poll() is None
