"""Two federated cities: each central's operator confirms the other's root at the command line,
the cross-certification reaches a town and a village over real sync links, and the village
decides each refusal of a foreign city's act offline from the records it holds."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.clock import SystemClock
from core.errors import AuthorityError, ErrorCode
from core.federation import JOINT_PART, PROXY_INTAKE, FederationState, ForeignClaim, admit
from sync.projection.catalog import current_catalog
from sync.projection.peers import federation_state, peer_states
from sync.record import keys, kinds
from sync.record.outcome import Status
from sync.record.trust import current_key
from tests.helpers import CITY, TOWN, VILLAGE
from tests.integration.syncnet import City, build_city, next_record
from tongban.cli import main

TONGBAN = [sys.executable, "-m", "tongban"]
HAINING = f"cn-{CITY}"
QINGPU_CODE = "310118"
QINGPU = f"cn-{QINGPU_CODE}"
THIRD = "cn-320509"
ITEM = "QP-HJ-001"


@dataclasses.dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run(*args: str | Path, ok: bool = True, stdin: str | None = None) -> Ran:
    """The ``tongban`` command, in this process (the first init runs it as its own process)."""
    result = CliRunner().invoke(main, [str(a) for a in args], input=stdin)
    ran = Ran(result.exit_code, result.stdout, result.stderr)
    if ok:
        assert ran.returncode == 0, ran.stdout + ran.stderr + repr(result.exception)
    return ran


def fingerprint_of(central_dir: Path) -> tuple[str, str]:
    """(root key hex, fingerprint) as ``tongban central fingerprint`` prints them."""
    lines = dict(
        line.split(": ", 1) for line in run("central", "fingerprint", central_dir).stdout.splitlines()
    )
    return lines["root key"], lines["fingerprint"]


def agree(home: Path, peer: str, name: str, root_hex: str, read_out: str) -> None:
    """Propose an agreement with ``peer`` and confirm it with the fingerprint read out."""
    out = run(
        "central", "peer", "propose", home, "--net", peer, "--name", name, "--root-pk", root_hex,
        "--item", f"{ITEM}:7", "--mode", PROXY_INTAKE, "--role", "accept", "--role", "decide",
    ).stdout  # fmt: skip
    assert f"peer root fingerprint: {read_out}" in out
    wrong = run("central", "peer", "confirm", home, "--net", peer, "--fingerprint", "0000:0000", ok=False)
    assert wrong.returncode == 3 and ErrorCode.PEER_FINGERPRINT.value in wrong.stderr
    listed = run("central", "peer", "list", home).stdout  # nothing signed: still a proposal
    assert f"{peer} {name} proposed" in listed and "#1" not in listed
    assert "#1 valid" in run("central", "peer", "confirm", home, "--net", peer, stdin=read_out + "\n").stdout


def federate(root: Path) -> tuple[City, Path]:
    """Haining (central, a town, villages) and Qingpu (a central), agreed both ways, the town
    and the village synced with Haining's central."""
    haining = build_city(root / "haining")
    qingpu = root / "qingpu"
    init = [*TONGBAN, "central", "init", str(qingpu), "--code", QINGPU_CODE, "--name", "上海市青浦区"]
    subprocess.run(init, check=True, capture_output=True, timeout=120)
    haining_root, haining_fp = fingerprint_of(haining.net.central_dir)
    qingpu_root, qingpu_fp = fingerprint_of(qingpu)
    assert haining_fp != qingpu_fp
    # Each operator enters the other's key and types back the fingerprint read out to them.
    agree(haining.net.central_dir, QINGPU, "上海市青浦区", qingpu_root, qingpu_fp)
    agree(qingpu, HAINING, "海宁市", haining_root, haining_fp)
    with haining.serving(CITY, TOWN):
        assert haining.sync(TOWN).ok and haining.sync(VILLAGE).ok
    return haining, qingpu


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory) -> tuple[City, Path]:
    """Two federated cities, for the tests that change nothing of them."""
    return federate(tmp_path_factory.mktemp("federation"))


def held_peers(city: City, code: str) -> dict[str, list[int]]:
    opened = city.open(code)
    try:
        return {net: [c.serial for c in s.certs] for net, s in peer_states(opened.log.db).items()}
    finally:
        opened.close()


def village_state(city: City, **extra: object) -> FederationState:
    opened = city.open(VILLAGE)
    try:
        catalog = current_catalog(opened.log.db)
        assert catalog is not None
        own = frozenset(i.code for i in catalog.items)
        return federation_state(opened.log.db, HAINING, own_items=own, **extra)  # type: ignore[arg-type]
    finally:
        opened.close()


def claim_of(state: FederationState, now: int, **changes: object) -> ForeignClaim:
    base = ForeignClaim(
        id=b"\x07" * 32, net=QINGPU, via=QINGPU, to=HAINING, origin=f"{QINGPU_CODE}104", seq=3,
        root_pk=state.peers[QINGPU].certs[0].root_pk, item=ITEM, item_net=QINGPU, cat=7,
        mode=PROXY_INTAKE, role="decide", case_started=now,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def refused(state: FederationState, claim: ForeignClaim, now: int) -> ErrorCode:
    with pytest.raises(AuthorityError) as caught:
        admit(state, claim, now)
    return caught.value.code


def test_each_citys_cross_certification_is_its_own_and_reaches_the_town_and_the_village(
    cities: tuple[City, Path],
) -> None:
    haining, qingpu = cities
    for code in (CITY, TOWN, VILLAGE):
        assert held_peers(haining, code) == {QINGPU: [1]}, code
    # Directional: Qingpu's store holds its own cross-certification of Haining, not Haining's.
    listed = run("central", "peer", "list", qingpu).stdout
    assert listed.startswith(f"{HAINING} 海宁市 #1 valid") and QINGPU not in listed


def test_the_village_decides_every_refusal_offline_from_the_records_it_holds(
    cities: tuple[City, Path],
) -> None:
    haining, _ = cities
    now = SystemClock().now()
    state = village_state(haining)
    own_item = next(iter(sorted(state.own_items)))
    assert admit(state, claim_of(state, now), now).serial == 1
    cases = {
        ErrorCode.PEER_SCOPE: [
            claim_of(state, now, item="QP-HJ-999"),
            claim_of(state, now, mode=JOINT_PART),
            claim_of(state, now, role="deliver"),
        ],
        ErrorCode.PEER_OWN_ITEM: [claim_of(state, now, item=own_item, item_net=HAINING)],
        ErrorCode.PEER_TRANSITIVE: [claim_of(state, now, net=THIRD)],
        ErrorCode.PEER_MISADDRESSED: [claim_of(state, now, to=THIRD)],
        ErrorCode.PEER_UNKNOWN: [claim_of(state, now, net=THIRD, via=THIRD)],
        ErrorCode.PEER_ROOT_CHANGED: [claim_of(state, now, root_pk=b"\x09" * 32)],
    }
    for code, claims in cases.items():
        for claim in claims:
            assert refused(state, claim, now) is code, claim
    first = claim_of(state, now)
    assert refused(village_state(haining, seen=frozenset({first.id})), first, now) is ErrorCode.PEER_REPLAY
    revoked_node = village_state(haining, revoked_nodes={QINGPU: {first.origin: 2}})
    assert refused(revoked_node, first, now) is ErrorCode.PEER_NODE_REVOKED
    # Expired: a case begun while it held finishes; a new one is refused.
    exp = state.peers[QINGPU].certs[0].exp
    assert admit(state, claim_of(state, exp + 1, case_started=now), exp + 1).serial == 1
    assert refused(state, claim_of(state, exp + 1, case_started=exp + 1), exp + 1) is ErrorCode.PEER_EXPIRED


def _forge_peer_cert(city: City, body: dict[str, object], role: str = "peers") -> bytes:
    """Central's next record, a peer.cert signed with its ``role`` key (as a faulty central or
    a stolen key would sign it), to offer to the village."""
    opened = city.open(CITY)
    try:
        key = current_key(opened.log.db, role)
        assert key is not None
    finally:
        opened.close()
    signer = keys.load_key_file(city.net.central_dir / "keys" / f"{role}-{key.kid.hex()}.key")
    return next_record(city, CITY, signer, kinds.PEER_CERT, body)


def _offer(city: City, code: str, envelope: bytes) -> ErrorCode | None:
    opened = city.open(code)
    try:
        outcome = opened.log.ingest(envelope, "test")
        assert outcome.status is Status.REJECTED
        return outcome.code
    finally:
        opened.close()


def test_a_renewal_reaches_the_village_a_rollback_or_changed_root_does_not_and_a_revocation_ends_it(
    tmp_path: Path,
) -> None:
    haining, _ = federate(tmp_path)
    central = haining.net.central_dir
    assert "#2 valid" in run("central", "peer", "renew", central, "--net", QINGPU).stdout
    with haining.serving(CITY, TOWN):
        assert haining.sync(TOWN).ok and haining.sync(VILLAGE).ok
    assert held_peers(haining, VILLAGE) == {QINGPU: [1, 2]}
    opened = haining.open(VILLAGE)
    try:
        held = peer_states(opened.log.db)[QINGPU]
        records = opened.log.count()
    finally:
        opened.close()
    older = held.certs[0].to_body()
    assert _offer(haining, VILLAGE, _forge_peer_cert(haining, older)) is ErrorCode.PEER_ROLLBACK
    moved = {**held.certs[1].to_body(), "serial": 3, "root_pk": b"\x09" * 32}
    assert _offer(haining, VILLAGE, _forge_peer_cert(haining, moved)) is ErrorCode.PEER_ROOT_CHANGED
    # A wider cross-certification signed with another role's key is not central's to give.
    wider = {**held.certs[1].to_body(), "serial": 3}
    assert _offer(haining, VILLAGE, _forge_peer_cert(haining, wider, "certs")) is ErrorCode.KEY_ROLE
    assert held_peers(haining, VILLAGE) == {QINGPU: [1, 2]}
    opened = haining.open(VILLAGE)
    try:
        assert opened.log.count() == records
    finally:
        opened.close()
    haining.verify_all()  # the projection rebuilds to the same rows

    # The revocation reaches the village and refuses every act; renewing is refused too.
    out = run("central", "peer", "revoke", central, "--net", QINGPU, "--reason", "协议终止").stdout
    assert "revoked up to #" in out
    with haining.serving(CITY, TOWN):
        assert haining.sync(TOWN).ok and haining.sync(VILLAGE).ok
    now = SystemClock().now() + 1
    state = village_state(haining)
    assert refused(state, claim_of(state, now), now) is ErrorCode.PEER_REVOKED
    again = run("central", "peer", "renew", central, "--net", QINGPU, ok=False)
    assert again.returncode == 3 and ErrorCode.PEER_REVOKED.value in again.stderr
    assert f"{QINGPU} 上海市青浦区 #2 revoked" in run("central", "peer", "list", central).stdout
    haining.verify_all()
