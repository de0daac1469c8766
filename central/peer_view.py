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

from dataclasses import dataclass, field, replace

from central import crossing_store, peer_link_store, peers
from central.authority import Central
from central.crossing_store import PeerCounts
from central.peer_link_store import PeerContact
from central.peer_store import Proposal
from core.clock import local_date
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
    cases: PeerCounts = field(
        default_factory=PeerCounts
    )  # cases out (taken in here, it decides) and in, open, overdue
    contact: PeerContact | None = None  # the link's view: last contact each way, waiting, last error
    refused: int = 0  # messages of it the link refused (kept with their codes)

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
    """Every peer city (by name, then net) and every open proposal (the same order), each
    city with its cases in and out and the link's last contact."""
    held, proposed = peers.listing(central)
    db = central.store.db
    counts = crossing_store.counts(db, local_date(now).isoformat())
    contacts = {c.net: c for c in peer_link_store.contacts(db)}
    refused = peer_link_store.refusal_counts(db)
    rows = [
        replace(row, cases=counts.get(row.net, PeerCounts()), contact=contacts.get(row.net),
                refused=refused.get(row.net, 0))
        for state in held
        if (row := peer_row(state, now)) is not None
    ]  # fmt: skip
    waiting = [proposal_row(p) for p in proposed]
    return sorted(rows, key=lambda r: (r.name, r.net)), sorted(waiting, key=lambda p: (p.name, p.net))
