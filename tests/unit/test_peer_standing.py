"""core.federation: where an agreement stands for its operators, and when central renews it."""

from __future__ import annotations

from core.federation import (
    DAY,
    EXPIRED,
    EXPIRING,
    IN_FORCE,
    MODE_LABELS,
    MODES,
    REVOKED,
    ROLE_LABELS,
    ROLES,
    STANDING_LABELS,
    CrossCert,
    PeerRevocation,
    PeerState,
    Scope,
    ScopeItem,
)

PEER = "cn-310118"
T0 = 1_800_000_000


def cert(serial: int = 1, nbf: int = T0, days: int = 30) -> CrossCert:
    scope = Scope((ScopeItem("QP-HJ-001", 7, frozenset({"proxy_intake"}), frozenset({"accept"})),))
    return CrossCert(PEER, "上海市青浦区", b"\x01" * 32, b"\xaa" * 32, serial, nbf, nbf + days * DAY, scope)


def test_an_agreement_is_in_force_then_expiring_in_its_last_week_then_expired() -> None:
    state = PeerState(PEER, (cert(),))
    assert state.standing(T0) == IN_FORCE
    assert state.standing(T0 + 23 * DAY - 1) == IN_FORCE
    assert state.standing(T0 + 23 * DAY) == EXPIRING
    assert state.standing(T0 + 30 * DAY - 1) == EXPIRING
    assert state.standing(T0 + 30 * DAY) == EXPIRED


def test_a_revocation_ends_the_agreement_from_its_effective_time() -> None:
    later = PeerRevocation(PEER, 1, T0 + DAY, "协议终止")
    state = PeerState(PEER, (cert(),), (later,))
    assert state.ended == later  # decided: nothing more is renewed
    assert state.standing(T0) == IN_FORCE and state.standing(T0 + DAY) == REVOKED
    assert state.renews_at() is None and state.renewal_due(T0 + 25 * DAY) is None


def test_a_newer_agreement_after_a_revocation_holds_again() -> None:
    state = PeerState(PEER, (cert(1), cert(2, nbf=T0 + DAY)), (PeerRevocation(PEER, 1, T0, "old root"),))
    assert state.ended is None and state.standing(T0 + DAY) == IN_FORCE


def test_renewal_is_due_with_a_third_of_the_validity_left_while_it_holds() -> None:
    state = PeerState(PEER, (cert(),))
    assert state.renews_at() == T0 + 20 * DAY
    assert state.renewal_due(T0 + 20 * DAY - 1) is None
    assert state.renewal_due(T0 + 20 * DAY) == cert()
    assert state.renewal_due(T0 + 30 * DAY - 1) == cert()
    assert state.renewal_due(T0 + 30 * DAY) is None  # lapsed: an operator renews it
    short = PeerState(PEER, (cert(days=9),))
    assert short.renews_at() == T0 + 6 * DAY


def test_the_newest_serial_is_judged_not_an_older_one() -> None:
    state = PeerState(PEER, (cert(1), cert(2, nbf=T0 + 20 * DAY)))
    assert state.renews_at() == T0 + 40 * DAY and state.renewal_due(T0 + 25 * DAY) is None


def test_every_mode_role_and_standing_has_its_words_in_both_languages() -> None:
    assert set(MODE_LABELS) == set(MODES) and set(ROLE_LABELS) == set(ROLES)
    assert set(STANDING_LABELS) == {IN_FORCE, EXPIRING, EXPIRED, REVOKED}
    for zh, en in [*MODE_LABELS.values(), *ROLE_LABELS.values(), *STANDING_LABELS.values()]:
        assert zh and en and zh != en
    assert MODE_LABELS["proxy_intake"][0] == "代收代办" and ROLE_LABELS["deliver"][0] == "送达"
