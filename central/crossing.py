"""Cases that cross to another city: what central does with what a peer city sends it.

A case of a peer's item taken in at one of our windows (异地代收, ``Intake.owner``) reaches our
central with its forward; :class:`central.crossing_store.CrossingProjector` queues it for the
owning city with the chain that certifies the window node. At the owning city,
:meth:`Crossing.deliver` admits it (:func:`core.federation.admit`, role ``intake``) and
**accepts** it (受理): our central's own ``case.intake`` carrying the other city's byte for
byte (``carried``), numbered here, with our deadline in our working days, decided by the
department or the town our catalog and grants name, and its ``forward``. That intake goes
back as the receipt of acceptance; the decider's decisions go back as they come.

At the window's city, the owning city's acceptance becomes our central's ``peer_accept``
step on the case (the owning city's case number, acceptance time and deadline, the record
carried), and each decision our central's own step of the same kind carrying the owning
city's. The window's supplement and withdrawal go the other way and become the owning
city's central's steps on its case. Every record crossing is checked along its chain from
the agreed root (:func:`sync.record.foreign.open_foreign`) and admitted by our
cross-certification of the city before anything is written; its id is kept, so a record
carried again is ``E_PEER_REPLAY``.

**多地联办** (:mod:`core.parts`): an application taken in at one of our windows with parts
of other cities goes to each as a ``part`` message (its intake). The part's city admits it
(mode ``joint_part``, role ``intake``) and accepts it as its own case of the part's item,
its intake carrying ours, decided by its department or town, as above; its acceptance and
its decision or its request for a supplement come back as our central's **part steps** on
our case (``part_accept``, ``part_approve``, ``part_reject``, ``part_supplement``), which
leave the case's own state as it is. What our window takes in for that request
(``part_supply``, naming the part's case there) goes to the part's city and becomes its
central's ``supply``. Of our own part nothing else crosses but the applicant's withdrawal,
which ends every part (the part's city's central withdraws its case, carrying ours).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sqlite_utils import Database

from central import crossing_store, peer_items, peer_outbox
from central.authority import Central
from central.crossing_store import IN, OUT, PeerCase
from core.carried import Carried
from core.cases import CaseEvent, Event
from core.catalog import Item, Mode
from core.clock import local_date
from core.errors import AuthorityError, ErrorCode, RecordError, TongbanError
from core.federation import (
    ACCEPT,
    DECIDE,
    INTAKE,
    JOINT_PART,
    PROXY_INTAKE,
    ForeignClaim,
    PeerRevocation,
    admit,
)
from core.intake import Intake, case_number
from sync.projection import case_queries
from sync.projection.calendars import StoreCalendar
from sync.projection.catalog import current_catalog
from sync.projection.departments import department_for
from sync.projection.grants import StoreGrants
from sync.projection.peers import federation_state
from sync.record import codec, kinds
from sync.record.db import transaction
from sync.record.envelope import Record, read_header, record_id, split
from sync.record.foreign import Foreign, open_foreign

MESSAGES = ("intake", "part", "step", "revoke", "catalog", "void", "trust")
STEP_ROLES = {
    Event.APPROVE.value: DECIDE,
    Event.REJECT.value: DECIDE,
    Event.REQUEST_SUPPLEMENT.value: DECIDE,
    Event.SUPPLY.value: INTAKE,
    Event.WITHDRAW.value: INTAKE,
    Event.PART_SUPPLY.value: INTAKE,
}
PART_STEPS = {
    Event.APPROVE: Event.PART_APPROVE,
    Event.REJECT: Event.PART_REJECT,
    Event.REQUEST_SUPPLEMENT: Event.PART_SUPPLEMENT,
}
"""The part step of ours that carries each decision or request of a part's city on its part."""


def _case_refused(detail: str) -> AuthorityError:
    return AuthorityError(ErrorCode.PEER_CASE, detail)


class Crossing:
    """What central does with a message of a peer city (module docstring)."""

    def __init__(self, central: Central) -> None:
        self.central = central
        self.calendars = StoreCalendar()

    @property
    def home(self) -> str:
        return self.central.config.central.net

    def deliver(self, db: Database, peer: str, data: bytes) -> None:
        """Take one message of ``peer`` (in the link's transaction); raises its refusal."""
        try:
            value = codec.decode(data)
        except TongbanError as exc:
            raise RecordError(ErrorCode.SCHEMA, f"a message of {peer}: {exc.text('en')}") from exc
        if not isinstance(value, dict) or set(value) != {"t", "env", "chain"} or value["t"] not in MESSAGES:
            raise RecordError(ErrorCode.SCHEMA, f"a message of {peer} is not a cross-city message")
        if value["t"] == "void":  # a message its city withdrew when it ended the agreement
            return
        if value["t"] == "catalog":  # its newest release: mirror the items we take in for it
            peer_items.mirror(self.central, peer, value["env"], list(value["chain"]))
            return
        state = federation_state(db, self.home)
        held = state.peers.get(peer)
        newest = held.newest if held is not None else None
        if newest is None:
            raise AuthorityError(ErrorCode.PEER_UNKNOWN, peer)
        envelope = value["env"]
        whose = read_header(split(envelope)[0]).net if isinstance(envelope, bytes) else ""
        if whose != peer:  # a record of a third city, passed on: its trust is not ours to give
            raise AuthorityError(ErrorCode.PEER_TRANSITIVE, f"a record of {whose} carried by {peer}")
        inner = open_foreign(envelope, value["chain"], peer, newest.root_pk)
        if crossing_store.seen(db, inner.record.id):
            raise AuthorityError(ErrorCode.PEER_REPLAY, inner.record.id.hex()[:16])
        carried = Carried(peer, value["env"], tuple(value["chain"]))
        with transaction(db):
            if value["t"] == "trust":
                self._node_revoked(db, peer, inner)
            elif value["t"] == "revoke":
                self._revoked(db, peer, inner)
            elif value["t"] in ("intake", "part"):
                self._accept(db, peer, inner, carried, joint=value["t"] == "part")
            elif inner.record.kind == kinds.CASE_INTAKE:
                self._accepted(db, peer, inner, carried)
            elif inner.record.kind == kinds.CASE_EVENT:
                self._step(db, peer, inner, carried)
            else:
                raise _case_refused(f"a {inner.record.kind} is not a case step")
            crossing_store.note_seen(db, inner.record.id, peer, self.central.store.log.clock.now())

    def _admit(self, db: Database, peer: str, inner: Foreign, *, to: str, item: str, item_net: str, cat: int,
               role: str, started: int, mode: str = PROXY_INTAKE) -> None:  # fmt: skip
        record = inner.record
        claim = ForeignClaim(
            id=record.id, net=record.payload.net, via=peer, to=to, origin=record.origin, seq=record.seq,
            root_pk=self._root_of(db, peer), item=item, item_net=item_net, cat=cat, mode=mode,
            role=role, case_started=started,
        )  # fmt: skip
        state = federation_state(db, self.home, revoked_nodes=crossing_store.revoked_nodes(db))
        admit(state, claim, self.central.store.log.clock.now())

    def _root_of(self, db: Database, peer: str) -> bytes:
        held = federation_state(db, self.home).peers[peer]
        newest = held.newest
        assert newest is not None
        return newest.root_pk

    def _node_revoked(self, db: Database, peer: str, inner: Foreign) -> None:
        """The peer revoked one of its nodes (or departments): its acts past the cut-off are
        refused here from now on (``E_PEER_NODE_REVOKED``)."""
        body = inner.record.body
        if inner.record.kind != kinds.CERT_REVOKE or inner.signer_role not in ("certs", "root"):
            raise _case_refused(f"a trust message carries a {inner.record.kind}")
        node, last_good = body.get("node"), body.get("last_good_seq")
        if not isinstance(node, str) or isinstance(last_good, bool) or not isinstance(last_good, int):
            raise RecordError(ErrorCode.SCHEMA, "cert.revoke: node and last_good_seq")
        crossing_store.note_node_revoked(db, peer, node, last_good)

    def _revoked(self, db: Database, peer: str, inner: Foreign) -> None:
        """The peer ended its agreement with us: we end ours with it (its cases go the paper
        route, 寄递, at both ends), unless we have already."""
        if inner.record.kind != kinds.PEER_REVOKE or inner.signer_role not in ("peers", "root"):
            raise _case_refused(f"a revocation message carries a {inner.record.kind}")
        theirs = PeerRevocation.from_body(inner.record.body)
        if theirs.peer != self.home:
            raise AuthorityError(ErrorCode.PEER_MISADDRESSED, f"a revocation of {theirs.peer}")
        held = federation_state(db, self.home).peers[peer]
        newest = held.newest
        assert newest is not None
        if any(r.serial >= newest.serial for r in held.revocations):
            return
        now = self.central.store.log.clock.now()
        reason = f"对方城市已撤销协议：{theirs.reason}"[:200]
        ours = PeerRevocation(peer, newest.serial, now, reason)
        self.central.append(kinds.PEER_REVOKE, ours.to_body(), "sys:peers")

    # -- the owning city: a case another city took in for us ------------------------------

    def _accept(self, db: Database, peer: str, inner: Foreign, carried: Carried, *, joint: bool) -> None:
        if inner.record.kind != kinds.CASE_INTAKE:
            raise _case_refused(f"an intake message carries a {inner.record.kind}")
        theirs = _intake(inner.record)
        now = self.central.store.log.clock.now()
        if joint:  # 多地联办: our part of the other city's application
            part = next((p for p in theirs.parts if p.city == self.home), None)
            if part is None:
                raise _case_refused(f"{theirs.case} has no part for {self.home}")
            to, code, cat, mode = self.home, part.item, part.cat, JOINT_PART
        elif theirs.owner is None:
            raise _case_refused(f"{theirs.case} is not a case of another city's item")
        else:
            to, code, cat, mode = theirs.owner, theirs.item, theirs.cat, PROXY_INTAKE
        self._admit(db, peer, inner, to=to, item=code, item_net=to, cat=cat, role=INTAKE, started=now,
                    mode=mode)  # fmt: skip
        if crossing_store.by_their_case(db, peer, theirs.case, IN) is not None:
            raise AuthorityError(ErrorCode.PEER_REPLAY, f"{theirs.case} was accepted already")
        catalog = current_catalog(db)
        if catalog is None or code not in {i.code for i in catalog.items}:
            raise AuthorityError(ErrorCode.PEER_SCOPE, f"{code} is not in this city's catalog")
        item = catalog.item(code)
        decider = self._decider_of(db, item, now)
        today = local_date(now)
        deadline = self.calendars.get(db).add_working_days(today, item.time_limit_days).date
        ours = replace(
            theirs,
            case=case_number(
                self.central.code, today, case_queries.next_serial(db, self.central.code, today)
            ),
            item_name=item.name,
            cat=catalog.version,
            mode=Mode.PROXY,
            decider=decider,
            limit=item.time_limit_days,
            deadline=deadline,
            item=item.code,
            grant=None,
            owner=None,
            carried=carried,
            parts=(),
        )
        record = self.central.append(kinds.CASE_INTAKE, ours.to_body(), "sys:peers")
        self.central.append(kinds.CASE_EVENT, {"case": ours.case, **CaseEvent(Event.FORWARD, now).to_body()},
                            "sys:peers")  # fmt: skip
        crossing_store.open_case(db, PeerCase(ours.case, peer, IN, theirs.case, record.id, now, now,
                                              deadline.isoformat(), "accepted", now, mode,
                                              code if joint else "", cat if joint else 0))  # fmt: skip
        for ref in theirs.files:
            peer_outbox.expect_file(db, peer, ref.hex, ref.size)

    def _decider_of(self, db: Database, item: Item, now: int) -> str:
        department = department_for(db, item, now)
        if department is not None:
            return department
        grants = StoreGrants(db)
        code = item.code
        for grant, revoked in sorted(grants.issued_by(self.central.code), key=lambda g: -g[0].ts):
            if (
                not revoked
                and code in grant.items
                and grant.mode >= Mode.DIRECT
                and grant.nbf <= now < grant.exp
            ):
                return grant.aud
        raise AuthorityError(ErrorCode.PEER_SCOPE, f"no department or town of this city decides {code}")

    # -- the window's city: the owning city's acceptance and decisions --------------------

    def _accepted(self, db: Database, peer: str, inner: Foreign, carried: Carried) -> None:
        theirs = _intake(inner.record)
        if theirs.carried is None or theirs.carried.net != self.home:
            raise _case_refused(f"{theirs.case} carries no case of this city")
        ours_id = _record_id(theirs.carried.env)
        case = crossing_store.by_intake(db, peer, ours_id)
        if case is None:
            raise _case_refused(f"{theirs.case} carries an intake this city did not send to {peer}")
        item, cat = self._item_of(db, case)
        if case.joint and theirs.item != item:
            raise _case_refused(f"{theirs.case} is a case of {theirs.item}, the part sent was {item}")
        self._admit(db, peer, inner, to=self.home, item=item, item_net=peer, cat=cat, role=ACCEPT,
                    started=case.started, mode=case.mode)  # fmt: skip
        kind = Event.PART_ACCEPT if case.joint else Event.PEER_ACCEPT
        event = CaseEvent(kind, inner.record.payload.ts, carried=carried, peer_case=theirs.case,
                          peer_deadline=theirs.deadline.isoformat())  # fmt: skip
        self.central.append(kinds.CASE_EVENT, {"case": case.case_no, **event.to_body()}, "sys:peers")
        crossing_store.note_accepted(db, case.case_no, theirs.case, inner.record.payload.ts,
                                     theirs.deadline.isoformat(), peer)  # fmt: skip
        crossing_store.note_step(db, case.case_no, kind.value, inner.record.payload.ts, peer)

    @staticmethod
    def _item_of(db: Database, case: PeerCase) -> tuple[str, int]:
        """The item the peer acts on and its catalog version: a part's, or the case's own."""
        if case.joint:
            return case.item, case.cat
        row = case_queries.case(db, case.case_no)
        assert row is not None
        return row.item, row.cat

    def _step(self, db: Database, peer: str, inner: Foreign, carried: Carried) -> None:
        try:
            step = CaseEvent.from_body({k: v for k, v in inner.record.body.items() if k != "case"})
        except TongbanError as exc:
            raise RecordError(ErrorCode.SCHEMA, exc.text("en")) from exc
        role = STEP_ROLES.get(step.kind.value)
        if role is None or step.carried is not None:
            raise _case_refused(f"a {step.kind.value} does not cross")
        their_case = str(inner.record.body["case"])
        direction = OUT if role == DECIDE else IN
        case = crossing_store.by_their_case(db, peer, their_case, direction)
        if case is None:
            raise _case_refused(f"{their_case} is no case {peer} shares with this city")
        item, cat = self._item_of(db, case)
        kind = step.kind
        if case.joint and direction == OUT:
            if step.kind not in PART_STEPS:
                raise _case_refused(f"a {step.kind.value} on a part of a joint application does not cross")
            kind = PART_STEPS[step.kind]
        elif case.joint and step.kind is Event.PART_SUPPLY:  # the supplement our part's city asked
            if step.peer_case != case.case_no:
                raise _case_refused(f"a supplement to {step.peer_case}, not to {case.case_no}")
            step = replace(step, kind=Event.SUPPLY, peer_case="")
            kind = Event.SUPPLY
        elif case.joint and step.kind is not Event.WITHDRAW:
            raise _case_refused(f"a {step.kind.value} of the other city's part does not cross")
        elif step.kind is Event.PART_SUPPLY:
            raise _case_refused(f"{case.case_no} is no part of a joint application")
        item_net = peer if direction == OUT else self.home
        self._admit(db, peer, inner, to=self.home, item=item, item_net=item_net, cat=cat, role=role,
                    started=case.started, mode=case.mode)  # fmt: skip
        if direction == OUT and inner.certified is None and inner.signer_role is None:
            raise _case_refused("a decision signed by no node of the owning city")
        ours = replace(step, kind=kind, carried=carried)
        self.central.append(kinds.CASE_EVENT, {"case": case.case_no, **ours.to_body()}, "sys:peers")
        crossing_store.note_step(db, case.case_no, kind.value, inner.record.payload.ts, peer)
        for ref in step.files:
            peer_outbox.expect_file(db, peer, ref.hex, ref.size)


def _intake(record: Record) -> Intake:
    try:
        return Intake.from_body(record.body)
    except TongbanError as exc:
        raise RecordError(ErrorCode.SCHEMA, exc.text("en")) from exc


def _record_id(envelope: bytes) -> bytes:
    return record_id(split(envelope)[0])


def both_times(case: PeerCase) -> tuple[date | None, str | None]:
    """When the owning city accepted the case (its local date) and its deadline there."""
    return (local_date(case.accepted_at) if case.accepted_at else None, case.their_deadline)
