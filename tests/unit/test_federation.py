"""core.federation: cross-certifications and the admission of a foreign city's act."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from core.errors import AuthorityError, ErrorCode, RecordError
from core.federation import (
    DAY,
    JOINT_PART,
    PROXY_INTAKE,
    CrossCert,
    FederationState,
    ForeignClaim,
    PeerRevocation,
    PeerState,
    Scope,
    ScopeItem,
    admit,
    admit_link,
    check_revocation,
    check_succession,
)

HOME = "cn-330481"
PEER = "cn-310118"
THIRD = "cn-320509"
ROOT = b"\x01" * 32
OTHER_ROOT = b"\x02" * 32
AGREEMENT = b"\xaa" * 32
T0 = 1_800_000_000
ITEM = "QP-HJ-001"


def scope(item: str = ITEM, cat: int = 7, modes: tuple[str, ...] = (PROXY_INTAKE,)) -> Scope:
    return Scope((ScopeItem(item, cat, frozenset(modes), frozenset({"accept", "decide"})),))


def cert(serial: int = 1, nbf: int = T0, days: int = 30, **changes: Any) -> CrossCert:
    base = CrossCert(PEER, "上海市青浦区", ROOT, AGREEMENT, serial, nbf, nbf + days * DAY, scope())
    return dataclasses.replace(base, **changes)


def state(*certs: CrossCert, revocations: tuple[PeerRevocation, ...] = (), **extra: Any) -> FederationState:
    nodes = extra.pop("revoked_nodes", {})
    peer = PeerState(PEER, certs or (cert(),), revocations, nodes)
    return FederationState(HOME, {PEER: peer}, **extra)


def claim(**changes: Any) -> ForeignClaim:
    base = ForeignClaim(
        id=b"\x05" * 32,
        net=PEER,
        via=PEER,
        to=HOME,
        origin="310118001",
        seq=12,
        root_pk=ROOT,
        item=ITEM,
        item_net=PEER,
        cat=7,
        mode=PROXY_INTAKE,
        role="decide",
        case_started=T0 + DAY,
    )
    return dataclasses.replace(base, **changes)


def refused(fed: FederationState, act: ForeignClaim, now: int = T0 + 2 * DAY) -> ErrorCode:
    with pytest.raises(AuthorityError) as caught:
        admit(fed, act, now)
    return caught.value.code


def test_an_act_within_scope_is_admitted_under_the_cross_certification_in_force() -> None:
    assert admit(state(), claim(), T0 + 2 * DAY).serial == 1


def test_an_item_mode_or_role_not_given_is_outside_the_scope() -> None:
    assert refused(state(), claim(item="QP-HJ-999")) is ErrorCode.PEER_SCOPE
    assert refused(state(), claim(mode=JOINT_PART)) is ErrorCode.PEER_SCOPE
    assert refused(state(), claim(role="deliver")) is ErrorCode.PEER_SCOPE
    assert refused(state(), claim(cat=8)) is ErrorCode.PEER_SCOPE  # another catalog version


def test_a_peer_deciding_one_of_our_own_items_is_refused_even_when_listed() -> None:
    assert refused(state(), claim(item_net=HOME)) is ErrorCode.PEER_OWN_ITEM
    fed = state(own_items=frozenset({"330481-HJ-001"}))
    assert refused(fed, claim(item="330481-HJ-001", item_net=THIRD)) is ErrorCode.PEER_OWN_ITEM


def test_a_third_citys_record_passed_on_by_a_peer_is_refused() -> None:
    assert refused(state(), claim(net=THIRD, via=PEER)) is ErrorCode.PEER_TRANSITIVE
    # Even a city we have an agreement with: its records come from it, not through another.
    assert refused(state(), claim(via=THIRD)) is ErrorCode.PEER_TRANSITIVE


def test_a_replayed_or_misaddressed_message_is_refused() -> None:
    act = claim()
    assert refused(state(seen=frozenset({act.id})), act) is ErrorCode.PEER_REPLAY
    assert refused(state(), claim(to=THIRD)) is ErrorCode.PEER_MISADDRESSED


def test_an_older_cross_certification_after_a_newer_one_is_a_rollback() -> None:
    held = PeerState(PEER, (cert(1), cert(2)))
    with pytest.raises(AuthorityError) as caught:
        check_succession(HOME, held, cert(2))
    assert caught.value.code is ErrorCode.PEER_ROLLBACK
    with pytest.raises(AuthorityError) as caught:
        check_succession(HOME, held, cert(1))
    assert caught.value.code is ErrorCode.PEER_ROLLBACK
    check_succession(HOME, held, cert(3))
    # Revoked serials count too: a revoked cross-certification cannot be issued again.
    revoked = PeerState(PEER, (cert(1),), (PeerRevocation(PEER, 1, T0, "ended"),))
    with pytest.raises(AuthorityError):
        check_succession(HOME, revoked, cert(1))


def test_an_expired_cross_certification_lets_cases_begun_while_it_held_finish() -> None:
    fed = state(cert(1, days=30))
    after = T0 + 31 * DAY
    assert admit(fed, claim(case_started=T0 + DAY), after).serial == 1
    assert refused(fed, claim(case_started=after), after) is ErrorCode.PEER_EXPIRED
    # A case "begun" before the first cross-certification held is not begun under it.
    assert refused(fed, claim(case_started=T0 - DAY)) is ErrorCode.PEER_EXPIRED


def test_a_case_is_judged_by_the_cross_certification_in_force_when_it_began() -> None:
    wider = cert(2, nbf=T0 + 10 * DAY, scope=scope(modes=(JOINT_PART, PROXY_INTAKE)))
    fed = state(cert(1), wider)
    now = T0 + 11 * DAY
    assert admit(fed, claim(mode=JOINT_PART, case_started=now), now).serial == 2
    assert refused(fed, claim(mode=JOINT_PART, case_started=T0 + DAY), now) is ErrorCode.PEER_SCOPE


def test_a_revoked_peer_is_refused_from_the_revocations_moment() -> None:
    revocation = PeerRevocation(PEER, 1, T0 + 3 * DAY, "agreement ended")
    fed = state(revocations=(revocation,))
    assert admit(fed, claim(), T0 + 2 * DAY).serial == 1
    assert refused(fed, claim(), T0 + 3 * DAY) is ErrorCode.PEER_REVOKED
    # A new agreement (a higher serial) is not touched; cases under the old one stay refused.
    renewed = state(cert(1), cert(2, nbf=T0 + 4 * DAY, agreement=b"\xbb" * 32), revocations=(revocation,))
    now = T0 + 5 * DAY
    assert admit(renewed, claim(case_started=now), now).serial == 2
    assert refused(renewed, claim(case_started=T0 + DAY), now) is ErrorCode.PEER_REVOKED


def test_a_revoked_peer_node_is_refused_after_its_last_good_record() -> None:
    fed = state(revoked_nodes={"310118001": 11})
    assert refused(fed, claim(seq=12)) is ErrorCode.PEER_NODE_REVOKED
    assert admit(fed, claim(seq=11), T0 + 2 * DAY).serial == 1


def test_a_peer_root_that_changes_without_a_new_agreement_is_refused() -> None:
    assert refused(state(), claim(root_pk=OTHER_ROOT)) is ErrorCode.PEER_ROOT_CHANGED
    held = PeerState(PEER, (cert(1),))
    with pytest.raises(AuthorityError) as caught:
        check_succession(HOME, held, cert(2, root_pk=OTHER_ROOT))
    assert caught.value.code is ErrorCode.PEER_ROOT_CHANGED
    # A new agreement, confirmed against the new fingerprint, may name the new root.
    check_succession(HOME, held, cert(2, root_pk=OTHER_ROOT, agreement=b"\xbb" * 32))


def test_an_unknown_peer_is_refused() -> None:
    fed = FederationState(HOME, {})
    assert refused(fed, claim()) is ErrorCode.PEER_UNKNOWN
    with pytest.raises(AuthorityError) as caught:
        check_revocation(None, PeerRevocation(PEER, 1, T0, "x"))
    assert caught.value.code is ErrorCode.PEER_UNKNOWN


def test_a_cross_certification_body_round_trips_and_is_checked_strictly() -> None:
    made = cert(3)
    assert CrossCert.from_body(made.to_body()) == made
    body = made.to_body()
    for bad in (
        {**body, "exp": body["nbf"] + 31 * DAY},  # longer than 30 days
        {**body, "serial": 0},
        {**body, "root_pk": b"\x01" * 31},
        {**body, "extra": 1},
        {**body, "scope": {"items": []}},
        {**body, "scope": {"items": [{**body["scope"]["items"][0], "modes": ["daishou"]}]}},
        {**body, "scope": {"items": [{**body["scope"]["items"][0], "roles": ["decide", "accept"]}]}},
    ):
        with pytest.raises(RecordError) as caught:
            CrossCert.from_body(bad)
        assert caught.value.code is ErrorCode.SCHEMA
    with pytest.raises(RecordError):
        check_succession(PEER, None, made)  # a city certifying itself


def held(*certs: CrossCert, revocations: tuple[PeerRevocation, ...] = ()) -> PeerState:
    return PeerState(PEER, certs or (cert(),), revocations)


def link_refusal(peer: PeerState | None, *, to: str = HOME, now: int = T0 + DAY) -> ErrorCode:
    with pytest.raises(AuthorityError) as caught:
        admit_link(HOME, peer, net=PEER, to=to, now=now)
    return caught.value.code


def test_a_link_is_admitted_under_the_newest_cross_certification_in_force_now() -> None:
    assert (
        admit_link(HOME, held(cert(1), cert(2, nbf=T0 + DAY)), net=PEER, to=HOME, now=T0 + 2 * DAY).serial
        == 2
    )


def test_a_link_is_refused_misaddressed_unknown_revoked_or_expired_in_that_order() -> None:
    revoked = (PeerRevocation(PEER, 1, T0 + DAY, "协议终止"),)
    assert link_refusal(held(), to=THIRD) is ErrorCode.PEER_MISADDRESSED
    assert link_refusal(None, to=THIRD) is ErrorCode.PEER_MISADDRESSED
    assert link_refusal(None) is ErrorCode.PEER_UNKNOWN
    assert link_refusal(PeerState(THIRD, (cert(),))) is ErrorCode.PEER_UNKNOWN  # another city's state
    assert link_refusal(held(revocations=revoked), now=T0 + 2 * DAY) is ErrorCode.PEER_REVOKED
    assert link_refusal(held(revocations=revoked), now=T0 + 40 * DAY) is ErrorCode.PEER_REVOKED
    assert link_refusal(held(), now=T0 + 30 * DAY) is ErrorCode.PEER_EXPIRED
    assert link_refusal(held(), now=T0 - 1) is ErrorCode.PEER_EXPIRED  # not yet valid
    # A revocation effective later has not ended the link yet; a new agreement is not covered.
    assert admit_link(HOME, held(revocations=revoked), net=PEER, to=HOME, now=T0).serial == 1
    assert (
        admit_link(
            HOME, held(cert(1), cert(2), revocations=revoked), net=PEER, to=HOME, now=T0 + 2 * DAY
        ).serial
        == 2
    )
