"""Agreements with other cities renewed on central's timer, with a fixed clock.

Weeks pass; nobody renews by hand. Central's duties renew a cross-certification once a third
or less of its validity is left: the next serial of the same agreement, with the same root
and scope, valid as long as the one before, each renewal in the log. A revoked agreement is
never renewed; one that lapsed while central was stopped waits for an operator; nothing is
signed while central is rebuilt from the network.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from nameko.testing.services import worker_factory

from central import peers
from central.authority import Central, open_central
from central.rebuild import marker
from central.services import HOME_KEY, CentralDuties
from core.clock import FixedClock
from core.federation import DAY, EXPIRED, IN_FORCE, PROXY_INTAKE, CrossCert, PeerState
from sync.projection.peers import peer_state
from sync.record.keys import fingerprint
from tests.helpers import Network, make_network

T0 = 1_800_000_000
QINGPU, WUJIANG = "cn-310118", "cn-320509"


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return make_network(tmp_path, FixedClock(t=T0))


def agree(central: Central, peer: str, name: str, days: int = 30) -> None:
    root = hashlib.sha256(peer.encode()).digest()
    scope = peers.scope_of([("QP-HJ-001", 7), ("QP-HJ-002", 3)], [PROXY_INTAKE], ["accept", "decide"])
    peers.propose(central, peer=peer, name=name, root_pk=root, scope=scope, valid_days=days)
    peers.confirm(central, peer, fingerprint(root))


def held(central: Central, peer: str) -> PeerState:
    state = peer_state(central.store.db, peer)
    assert state is not None
    return state


def newest(central: Central, peer: str) -> CrossCert:
    cert = held(central, peer).newest
    assert cert is not None
    return cert


def test_central_renews_an_agreement_when_a_third_of_its_validity_is_left(
    net: Network, caplog: pytest.LogCaptureFixture
) -> None:
    with open_central(net.central_dir, net.clock) as central:
        agree(central, QINGPU, "上海市青浦区")
        first = newest(central, QINGPU)
        assert held(central, QINGPU).renews_at() == T0 + 20 * DAY
        net.clock.set(T0 + 20 * DAY - 1)  # a second before the last third
        assert peers.renew_due(central) == []
        net.clock.set(T0 + 20 * DAY)
        with caplog.at_level(logging.INFO, logger="central.peers"):
            made = peers.renew_due(central)
        assert len(made) == 1
        second = newest(central, QINGPU)
        assert (second.serial, second.nbf, second.exp) == (2, T0 + 20 * DAY, T0 + 50 * DAY)
        assert (second.agreement, second.root_pk, second.scope) == (
            first.agreement,
            first.root_pk,
            first.scope,
        )
        assert "renewed the agreement with 上海市青浦区 (cn-310118): cross-certification #2" in caplog.text
        assert peers.renew_due(central) == []  # asked again at once: nothing more is due
        assert held(central, QINGPU).standing(net.clock.now()) == IN_FORCE


def test_a_short_agreement_keeps_its_length_and_a_revoked_one_is_never_renewed(net: Network) -> None:
    with open_central(net.central_dir, net.clock) as central:
        agree(central, QINGPU, "上海市青浦区", days=9)
        agree(central, WUJIANG, "苏州市吴江区")
        peers.revoke(central, WUJIANG, "协议终止")
        net.clock.set(T0 + 29 * DAY)  # both long due; Qingpu's lapsed
        assert peers.renew_due(central) == []
        assert held(central, QINGPU).standing(net.clock.now()) == EXPIRED  # for an operator to look at
        assert [c.serial for c in held(central, WUJIANG).certs] == [1]
        assert held(central, WUJIANG).renews_at() is None

        peers.renew(central, QINGPU, valid_days=9)  # the operator renews by hand
        start = net.clock.now()
        net.clock.set(start + 6 * DAY)
        made = peers.renew_due(central)
        assert [r.body["serial"] for r in made] == [3]
        assert newest(central, QINGPU).exp - newest(central, QINGPU).nbf == 9 * DAY


def test_the_duties_timer_renews_and_signs_nothing_while_central_is_rebuilt(net: Network) -> None:
    with open_central(net.central_dir, net.clock) as central:
        agree(central, QINGPU, "上海市青浦区")
    duties = worker_factory(CentralDuties, config={HOME_KEY: str(net.central_dir)})
    duties.clock = net.clock
    net.clock.set(T0 + 25 * DAY)
    marker(net.central_dir).write_text("rebuilding\n")
    duties.recheck_and_renew()
    with open_central(net.central_dir, net.clock) as central:
        assert newest(central, QINGPU).serial == 1
    marker(net.central_dir).unlink()
    duties.recheck_and_renew()
    with open_central(net.central_dir, net.clock) as central:
        assert newest(central, QINGPU).serial == 2
        assert newest(central, QINGPU).nbf == T0 + 25 * DAY
