"""Central's timed duties as a nameko service, run by ``tongban central run``.

Config: ``CENTRAL_HOME`` (central's directory). Duties: sign a heartbeat when the last one
is :data:`central.heartbeat.EVERY` seconds old (:mod:`central.heartbeat`), and re-check
new intakes against their delegation chain (:mod:`central.recheck`), renew root grants
before they expire (:func:`central.authority.renew_grants`), and renew the
cross-certifications of the agreements with other cities that hold
(:func:`central.peers.renew_due`). While central is rebuilt from the network
(:mod:`central.rebuild`) it signs nothing: no heartbeat, no renewal.
"""

from __future__ import annotations

from pathlib import Path

from nameko.dependency_providers import Config
from nameko.timer import timer

from central.authority import open_central, renew_grants
from central.heartbeat import beat_if_due
from central.peers import renew_due
from central.rebuild import marker
from central.recheck import recheck
from core.clock import Clock, SystemClock

HOME_KEY = "CENTRAL_HOME"


def rebuilding(home: Path) -> bool:
    """Whether central at ``home`` is being rebuilt from the network (:mod:`central.rebuild`)."""
    return marker(home).exists()


class CentralDuties:
    name = "central_duties"
    config = Config()
    clock: Clock = SystemClock()

    @timer(interval=30, eager=True)
    def heartbeat(self) -> None:
        home = Path(self.config[HOME_KEY])
        if not rebuilding(home):  # central signs nothing while it is rebuilt
            beat_if_due(home, self.clock)

    @timer(interval=30)
    def recheck_and_renew(self) -> None:
        """Re-check the intakes that arrived (and those a new revocation touches); renew
        the root grants and the peer cities' cross-certifications that are due (not while
        central is rebuilt: it signs nothing)."""
        home = Path(self.config[HOME_KEY])
        with open_central(home, self.clock) as central:
            recheck(central.store, central.code, max_offline_days=central.config.recheck.max_offline_days)
            if not rebuilding(home):
                renew_grants(central)
                renew_due(central)

    @timer(interval=1)
    def tick(self) -> None:
        """Wakes the hub each second so SIGTERM stops the service at once (nameko sleeps 60 s)."""
