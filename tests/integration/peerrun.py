"""Central's peer link service under nameko and eventlet, as ``tongban central run`` runs it,
with the tests' deliver hook: ``python -m tests.integration.peerrun HOME``."""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import signal  # noqa: E402
import sys  # noqa: E402

from nameko.runners import ServiceRunner  # noqa: E402

from central.peer_service import HOME_KEY, CentralPeers, PeerLinkProvider  # noqa: E402
from tests.integration.peerlink import record  # noqa: E402


class TestedPeers(CentralPeers):
    link = PeerLinkProvider(deliver=record)


def main(home: str) -> int:
    runner = ServiceRunner({HOME_KEY: home})
    runner.add_service(TestedPeers)
    signal.signal(signal.SIGTERM, lambda *_: eventlet.spawn(runner.stop))
    runner.start()
    runner.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
