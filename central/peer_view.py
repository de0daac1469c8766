"""The peer cities as the operators' page shows them: one row per agreement, and the proposals.

A :class:`PeerRow` is what the page (and anything else that lists peer cities) needs of one
city, built from what central holds (:func:`central.peers.listing`): its name first and
net second, the root fingerprint as ``tongban central fingerprint`` prints it, the newest
serial with its validity, where the agreement stands (:meth:`core.federation.PeerState.
standing`), the revocation's reason and time, when central's timer renews it, and the scope
in the peer catalog's versions. The cross-city link adds its own figures for a city (cases
in and out, waiting, overdue, its last contact) as fields of this row: the page's table
shows whatever the row carries, so a row is built in one place only, :func:`peer_rows`.
"""

from __future__ import annotations

from dataclasses import dataclass

from central import peers
from central.authority import Central
from central.peer_store import Proposal
from core.federation import MODES, REVOKED, ROLES, PeerState, Scope
from sync.record.keys import fingerprint


@dataclass(frozen=True)
class ScopeRow:
    """One item of a peer's scope: its code, the peer catalog's version, modes and roles
    (in the order of :data:`core.federation.MODES` and :data:`core.federation.ROLES`)."""

    item: str
    cat: int
    modes: tuple[str, ...]
    roles: tuple[str, ...]


@dataclass(frozen=True)
class PeerRow:
    """One peer city on the operators' page."""

    net: str
    name: str
    fingerprint: str
    serial: int
    nbf: int
    exp: int
    standing: str  # core.federation: in_force, expiring, expired, revoked
    scope: tuple[ScopeRow, ...]
    revoked_at: int | None = None  # when the revocation took effect
    revoked_reason: str = ""
    renews_at: int | None = None  # when central's timer renews it (None: revoked)

    @property
    def revoked(self) -> bool:
        return self.standing == REVOKED


@dataclass(frozen=True)
class ProposalRow:
    """A proposal waiting for its fingerprint to be typed back."""

    net: str
    name: str
    fingerprint: str
    valid_days: int
    proposed_at: int
    scope: tuple[ScopeRow, ...]


def scope_rows(scope: Scope) -> tuple[ScopeRow, ...]:
    return tuple(
        ScopeRow(
            i.item,
            i.cat,
            tuple(m for m in MODES if m in i.modes),
            tuple(r for r in ROLES if r in i.roles),
        )
        for i in scope.items
    )


def peer_row(held: PeerState, now: int) -> PeerRow | None:
    """The row of one peer city (None for a state without a certificate)."""
    newest = held.newest
    if newest is None:
        return None
    ended = held.ended
    return PeerRow(
        net=held.net,
        name=newest.name,
        fingerprint=fingerprint(newest.root_pk),
        serial=newest.serial,
        nbf=newest.nbf,
        exp=newest.exp,
        standing=held.standing(now),
        scope=scope_rows(newest.scope),
        revoked_at=ended.effective if ended is not None else None,
        revoked_reason=ended.reason if ended is not None else "",
        renews_at=held.renews_at(),
    )


def proposal_row(proposal: Proposal) -> ProposalRow:
    return ProposalRow(
        proposal.peer,
        proposal.name,
        fingerprint(proposal.root_pk),
        proposal.valid_days,
        proposal.proposed_at,
        scope_rows(proposal.scope),
    )


def peer_rows(central: Central, now: int) -> tuple[list[PeerRow], list[ProposalRow]]:
    """Every peer city (by name, then net) and every open proposal (the same order)."""
    held, proposed = peers.listing(central)
    rows = [row for state in held if (row := peer_row(state, now)) is not None]
    waiting = [proposal_row(p) for p in proposed]
    return sorted(rows, key=lambda r: (r.name, r.net)), sorted(waiting, key=lambda p: (p.name, p.net))
