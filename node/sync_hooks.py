"""What a node does around its sync sessions: the work the link leaves to its home.

* When the parent has welcomed a session, the node appends its ``node.status`` report
  (:func:`sync.projection.status.report_status`), so that it goes up in the same session;
  in a session whose parent takes them (:data:`sync.link.protocol.STATUS_SEEN_FROM`) it
  names the software it runs and the newest protocol it speaks, and a town when each of
  its villages last ended a session with it; in a session of protocol 4
  (:data:`sync.link.protocol.FILES_FROM`), the bytes of its files waiting to go up (held,
  of its subtree's cases, not known to be at central), to come down, and held.
  A report is advisory: one that cannot be made is logged and the session goes on.
* After a good session a town renews the sub-grants it gave its villages that are due
  (their parents, its own grants, arrive renewed in sessions); the renewals go up at the
  next session.
"""

from __future__ import annotations

import logging

from core.errors import StoreError, TongbanError
from sync.link.file_link import FileLink
from sync.link.protocol import FILES_FROM, STATUS_SEEN_FROM, VERSIONS
from sync.link.store import peers_seen
from sync.projection.delegation import renew_grants
from sync.projection.status import report_status
from sync.record.envelope import Keyring, Signer
from sync.record.filestore import FileStore
from sync.record.log import RecordLog
from sync.record.outcome import Heads
from web.health import SOFTWARE_VERSION

log = logging.getLogger(__name__)


def welcomed(
    store_log: RecordLog,
    signer: Signer | Keyring,
    code: str,
    parent_heads: Heads,
    backlog: int,
    version: int,
    files: FileStore | None = None,
) -> None:
    """Report this node's status, if a report is due (see :func:`report_status`), in a
    session of protocol ``version``."""
    try:
        if version >= STATUS_SEEN_FROM:
            seen = {child: at for child, (at, _) in peers_seen(store_log.db).items()}
            software: tuple[str, int] | None = (SOFTWARE_VERSION, VERSIONS[0])
        else:
            seen, software = None, None
        figures = None
        if version >= FILES_FROM:
            figures = FileLink(store_log, files, code, "", lambda *_: None).figures()
        report_status(store_log, signer, code, parent_heads, backlog, seen, software, figures)
    except StoreError:
        raise
    except TongbanError as exc:  # a report is advisory: the session goes on
        log.warning("no status report: %s", exc.render("en"))


def synced(store_log: RecordLog, signer: Signer | Keyring, code: str) -> int:
    """Renew the sub-grants this node issued that are due; how many it renewed."""
    try:
        return len(renew_grants(store_log, signer, code))
    except StoreError:
        raise
    except TongbanError as exc:  # a grant that cannot be renewed is left to expire, visibly
        log.warning("renewing grants: %s", exc.render("en"))
        return 0
