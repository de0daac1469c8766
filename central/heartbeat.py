"""Central's signed heartbeat: the time, an expiry, and the head of every central stream.

A heartbeat (``central.heartbeat``, signed with the heartbeat role key) flows down to every
node like any central record. It tells a node three things (notes (d), TUF's timestamp):

* **a floor for the current time**: a node whose clock is more than
  :data:`sync.projection.heartbeat.CLOCK_TOLERANCE` behind the newest heartbeat it holds shows a clock alarm;
* **freshness**: past ``exp`` (:data:`VALIDITY`) the node shows that what it holds may be
  out of date (a relay that withholds central's records cannot hide that), and flags the
  cases it takes in, but keeps taking them;
* **what it is missing**: the heads (central's log seq, catalog and calendar versions,
  certificates, revocations, root grants) against what the node holds.

:class:`central.services.CentralDuties` (run by ``tongban central run``) signs one every
:data:`EVERY` seconds; ``tongban central heartbeat DIR`` signs one now.
"""

from __future__ import annotations

from pathlib import Path

from central.authority import Central, open_central
from core.clock import Clock
from sync.projection import calendars, catalog
from sync.projection.grants import StoreGrants
from sync.projection.heartbeat import Heartbeat, latest_heartbeat
from sync.record import kinds, trust
from sync.record.envelope import Record

EVERY = 15 * 60
VALIDITY = 72 * 3600


def heads(central: Central) -> dict[str, int]:
    """The head of each central stream, as counted in central's own store."""
    db = central.store.db
    own = central.store.log.head(central.code)
    grants = StoreGrants(db)
    return {
        "log": own.seq if own else 0,
        "catalog": catalog.newest_version(db),
        "certs": trust.certificate_count(db),
        "revocations": trust.revocation_count(db),
        "grants": grants.count(central.code),
        "grant_revocations": grants.revocation_count(central.code),
        "calendar": calendars.newest_version(db),
    }


def publish(central: Central, *, validity: int = VALIDITY) -> Record:
    """Sign and append a heartbeat now."""
    now = central.store.log.clock.now()
    body = {"time": now, "exp": now + validity, "heads": heads(central)}
    return central.append(kinds.HEARTBEAT, body, actor="sys:heartbeat")


def due(latest: Heartbeat | None, now: int, every: int = EVERY) -> bool:
    return latest is None or now >= latest.time + every


def beat_if_due(home: Path, clock: Clock, every: int = EVERY) -> Record | None:
    """Open central at ``home`` and publish a heartbeat if the last one is ``every`` old."""
    with open_central(home, clock) as central:
        if not due(latest_heartbeat(central.store.db), clock.now(), every):
            return None
        return publish(central)
