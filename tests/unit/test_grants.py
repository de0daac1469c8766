"""core.grants: bodies, narrowing, and the verification algorithm (examples and properties)."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.admin import is_within
from core.catalog import Audience, CatalogRelease, Item, Mode
from core.errors import AuthorityError, ErrorCode, InputError
from core.grants import (
    MAX_CHAIN,
    Authorization,
    Grant,
    Revocation,
    Verdict,
    authorize,
    check_narrowing,
)

ROOT = "330481"
TOWN = "330481101"  # 许村镇
OTHER_TOWN = "330481103"  # 长安镇
VILLAGE = "330481101201"  # 茗山村
OTHER_VILLAGE = "330481103201"  # 盐仓村
DAY = 86_400
T0 = 1_764_000_000
ITEMS = ("GA-0001", "MZ-0001", "RS-0001", "RS-0002", "SW-0001", "WJ-0001", "YB-0001", "ZJ-0001")


def gid(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def grant(label: str, **fields: Any) -> Grant:
    base: dict[str, Any] = {
        "id": gid(label),
        "issuer": ROOT,
        "ts": T0,
        "aud": TOWN,
        "items": ("GA-0001", "RS-0001", "YB-0001"),
        "mode": Mode.SAME_POWER,
        "nbf": T0,
        "exp": T0 + 365 * DAY,
        "depth": 1,
        "parent": None,
        "cat": 1,
    }
    base.update(fields)
    return Grant(**base)


ROOT_GRANT = grant("root→town")
VILLAGE_GRANT = grant(
    "town→village",
    issuer=TOWN,
    aud=VILLAGE,
    items=("GA-0001", "YB-0001"),
    mode=Mode.PROXY,
    nbf=T0 + DAY,
    exp=T0 + 91 * DAY,
    depth=0,
    parent=ROOT_GRANT.id,
)
AT = T0 + 10 * DAY


@dataclass
class Source:
    """An in-memory GrantSource."""

    grants: dict[bytes, Grant] = field(default_factory=dict)
    revocations: list[Revocation] = field(default_factory=list)

    @classmethod
    def of(cls, *grants: Grant, revocations: Iterable[Revocation] = ()) -> Source:
        return cls({g.id: g for g in grants}, list(revocations))

    def grant(self, grant_id: bytes) -> Grant | None:
        return self.grants.get(grant_id)

    def revocations_of(self, grant_id: bytes) -> list[Revocation]:
        return [r for r in self.revocations if r.target == grant_id]


def check(
    leaf: Grant | bytes = VILLAGE_GRANT,
    *,
    source: Source | None = None,
    node: str = VILLAGE,
    item: str = "GA-0001",
    mode: Mode = Mode.PROXY,
    at: int = AT,
    **kwargs: Any,
) -> Authorization:
    src = source if source is not None else Source.of(ROOT_GRANT, VILLAGE_GRANT)
    opts: dict[str, Any] = {"is_within": is_within, "root": ROOT} | kwargs
    return authorize(leaf, node=node, item=item, mode=mode, at=at, source=src, **opts)


def assert_refused(result: Authorization, code: ErrorCode) -> None:
    assert result.verdict is Verdict.REFUSED, result
    assert result.code is code, result
    assert not result.accepted


# -- bodies -----------------------------------------------------------------------------


def test_grant_body_round_trips_and_omits_parent_of_root_grants() -> None:
    body = ROOT_GRANT.to_body()
    assert set(body) == {"aud", "items", "mode", "nbf", "exp", "depth", "cat"}
    assert Grant.from_body(copy.deepcopy(body), id=ROOT_GRANT.id, issuer=ROOT, ts=T0) == ROOT_GRANT
    body = VILLAGE_GRANT.to_body()
    assert (
        body["parent"] == ROOT_GRANT.id
        and body["items"] == ["GA-0001", "YB-0001"]
        and body["mode"] == "proxy"
    )
    assert Grant.from_body(body, id=VILLAGE_GRANT.id, issuer=TOWN, ts=T0) == VILLAGE_GRANT


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"extra": 1}, "unknown field(s) extra"),
        ({"parent": None}, "absent for a root grant, not null"),
        ({"parent": b"short"}, "parent must be 32 bytes"),
        ({"items": ["RS-0001", "GA-0001"]}, "sorted and unique"),
        ({"items": ["GA-0001", "GA-0001"]}, "sorted and unique"),
        ({"items": []}, "non-empty"),
        ({"items": "GA-0001"}, "items must be a list"),
        ({"items": ["GA1"]}, "not an item code"),
        ({"mode": "full"}, "mode must be proxy, direct or same_power"),
        ({"nbf": 1.0}, "nbf must be a non-negative integer"),
        ({"depth": True}, "depth must be a non-negative integer"),
        ({"depth": -1}, "depth must be a non-negative integer"),
        ({"exp": T0}, "exp must be after nbf"),
        ({"cat": 0}, "cat must be a catalog version"),
        ({"aud": ""}, "aud must be a non-empty node code"),
    ],
)
def test_grant_from_body_is_strict(change: dict[str, Any], fragment: str) -> None:
    body = ROOT_GRANT.to_body() | change
    with pytest.raises(InputError) as exc:
        Grant.from_body(body, id=ROOT_GRANT.id, issuer=ROOT, ts=T0)
    assert exc.value.code is ErrorCode.GRANT_INVALID and fragment in exc.value.detail


def test_grant_from_body_names_missing_fields() -> None:
    body = ROOT_GRANT.to_body()
    del body["cat"]
    with pytest.raises(InputError) as exc:
        Grant.from_body(body, id=ROOT_GRANT.id, issuer=ROOT, ts=T0)
    assert "missing field(s) cat" in exc.value.detail


def test_revocation_body_round_trips() -> None:
    rev = Revocation(VILLAGE_GRANT.id, AT, "村社工作人员调整", TOWN)
    assert rev.to_body() == {"target": VILLAGE_GRANT.id, "effective": AT, "reason": "村社工作人员调整"}
    assert Revocation.from_body(rev.to_body(), issuer=TOWN) == rev
    with pytest.raises(InputError):
        Revocation.from_body(rev.to_body() | {"reason": ""}, issuer=TOWN)
    with pytest.raises(InputError):
        Revocation.from_body(rev.to_body() | {"by": ROOT}, issuer=TOWN)


# -- authorize: examples ----------------------------------------------------------------


def test_a_narrowed_chain_authorizes() -> None:
    result = check()
    assert result.ok and result.accepted and result.code is None
    assert result.chain == (VILLAGE_GRANT.id, ROOT_GRANT.id)
    result.raise_if_refused()
    assert check(VILLAGE_GRANT.id).ok  # by id, through the source
    assert check(ROOT_GRANT, node=TOWN, item="RS-0001", mode=Mode.SAME_POWER).ok


def test_item_and_mode_must_be_granted() -> None:
    assert_refused(check(item="RS-0001"), ErrorCode.GRANT_ITEM)
    assert_refused(check(mode=Mode.DIRECT), ErrorCode.GRANT_MODE)
    with pytest.raises(AuthorityError) as exc:
        check(mode=Mode.DIRECT).raise_if_refused()
    assert exc.value.code is ErrorCode.GRANT_MODE


def test_the_grant_must_be_for_this_node() -> None:
    assert_refused(check(node=OTHER_VILLAGE), ErrorCode.GRANT_AUDIENCE)


@pytest.mark.parametrize(
    ("at", "code"),
    [
        (VILLAGE_GRANT.exp + 1, ErrorCode.GRANT_EXPIRED),
        (VILLAGE_GRANT.nbf - 1, ErrorCode.GRANT_NOT_YET_VALID),
    ],
)
def test_expiry_and_not_yet_valid_degrade_to_stale(at: int, code: ErrorCode) -> None:
    result = check(at=at)
    assert result.verdict is Verdict.STALE and result.accepted and not result.ok
    assert result.code is code and code in result.flags
    result.raise_if_refused()  # stale is not a refusal


def test_validity_bounds_are_inclusive() -> None:
    assert check(at=VILLAGE_GRANT.nbf).ok and check(at=VILLAGE_GRANT.exp).ok


def test_refusal_beats_staleness() -> None:
    assert_refused(check(at=VILLAGE_GRANT.exp + DAY, item="RS-0001"), ErrorCode.GRANT_ITEM)


def test_known_revocations_refuse_from_their_effective_time() -> None:
    rev = Revocation(VILLAGE_GRANT.id, AT, "停止授权", TOWN)
    source = Source.of(ROOT_GRANT, VILLAGE_GRANT, revocations=[rev])
    assert_refused(check(source=source, at=AT), ErrorCode.GRANT_REVOKED)
    assert check(source=source, at=AT - 1).ok  # effective later: the record predates it


@pytest.mark.parametrize(
    ("target", "issuer", "honoured"),
    [
        (VILLAGE_GRANT.id, TOWN, True),  # the grant's issuer
        (VILLAGE_GRANT.id, ROOT, True),  # an issuer above it / the root
        (ROOT_GRANT.id, ROOT, True),  # an ancestor revoked: the whole path dies
        (VILLAGE_GRANT.id, OTHER_TOWN, False),  # a stranger cannot revoke
        (VILLAGE_GRANT.id, VILLAGE, False),  # nor can the grantee
        (ROOT_GRANT.id, TOWN, False),  # nor a holder revoke its own parent grant
    ],
)
def test_only_issuers_on_the_chain_or_the_root_may_revoke(target: bytes, issuer: str, honoured: bool) -> None:
    source = Source.of(ROOT_GRANT, VILLAGE_GRANT, revocations=[Revocation(target, T0, "撤销", issuer)])
    result = check(source=source)
    if honoured:
        assert_refused(result, ErrorCode.GRANT_REVOKED)
    else:
        assert result.ok


def test_broken_chains_refuse() -> None:
    assert_refused(check(source=Source.of(VILLAGE_GRANT)), ErrorCode.GRANT_CHAIN_BROKEN)  # parent missing
    assert_refused(check(gid("nobody")), ErrorCode.GRANT_CHAIN_BROKEN)  # leaf unknown
    foreign_root = grant("foreign", issuer="330482")
    leaf = replace(VILLAGE_GRANT, parent=foreign_root.id)
    result = check(leaf, source=Source.of(foreign_root, leaf), is_within=lambda a, b: True)
    assert_refused(result, ErrorCode.GRANT_CHAIN_BROKEN)
    assert "not at the root 330481" in result.detail


def test_chain_length_is_capped() -> None:
    def anywhere(code: str, ancestor: str) -> bool:
        return True

    chain = [grant("g0", issuer=ROOT, aud="n1", depth=MAX_CHAIN)]
    for i in range(1, MAX_CHAIN + 1):
        parent = chain[-1]
        chain.append(
            grant(f"g{i}", issuer=parent.aud, aud=f"n{i + 1}", depth=parent.depth - 1, parent=parent.id)
        )
    source = Source.of(*chain)
    ok = check(chain[MAX_CHAIN - 1], source=source, node=f"n{MAX_CHAIN}", item="GA-0001", is_within=anywhere)
    assert ok.ok and len(ok.chain) == MAX_CHAIN
    too_long = check(chain[MAX_CHAIN], source=source, node=f"n{MAX_CHAIN + 1}", is_within=anywhere)
    assert_refused(too_long, ErrorCode.GRANT_CHAIN_BROKEN)


def test_audience_must_lie_inside_the_issuers_area() -> None:
    outside = replace(VILLAGE_GRANT, aud=OTHER_VILLAGE)
    result = check(outside, node=OTHER_VILLAGE, source=Source.of(ROOT_GRANT, outside))
    assert_refused(result, ErrorCode.GRANT_AUDIENCE)
    itself = replace(VILLAGE_GRANT, aud=TOWN)
    assert_refused(check(itself, node=TOWN, source=Source.of(ROOT_GRANT, itself)), ErrorCode.GRANT_AUDIENCE)


def test_a_malformed_audience_code_refuses_instead_of_raising() -> None:
    bad = replace(VILLAGE_GRANT, aud="3304811012O1")  # letter O, not zero
    assert_refused(check(bad, node=bad.aud, source=Source.of(ROOT_GRANT, bad)), ErrorCode.GRANT_AUDIENCE)


def test_principal_alignment() -> None:
    # 长安镇 signs a sub-grant claiming 许村镇's grant as its parent.
    forged = replace(VILLAGE_GRANT, issuer=OTHER_TOWN, aud=OTHER_VILLAGE)
    result = check(forged, node=OTHER_VILLAGE, source=Source.of(ROOT_GRANT, forged))
    assert_refused(result, ErrorCode.GRANT_AUDIENCE)


def test_depth() -> None:
    flat_root = replace(ROOT_GRANT, depth=0)
    leaf = replace(VILLAGE_GRANT, parent=flat_root.id)
    assert_refused(check(leaf, source=Source.of(flat_root, leaf)), ErrorCode.GRANT_DEPTH)
    deep_leaf = replace(VILLAGE_GRANT, depth=1)
    assert_refused(check(deep_leaf, source=Source.of(ROOT_GRANT, deep_leaf)), ErrorCode.GRANT_DEPTH)


@pytest.mark.parametrize(
    "change",
    [
        {"items": ("GA-0001", "MZ-0001")},
        {"mode": Mode.SAME_POWER},
        {"nbf": T0 - 1},
        {"exp": ROOT_GRANT.exp + 1},
    ],
)
def test_widening_is_refused(change: dict[str, Any]) -> None:
    parent = replace(ROOT_GRANT, mode=Mode.DIRECT)
    leaf = replace(VILLAGE_GRANT, **({"parent": parent.id, "mode": Mode.PROXY} | change))
    result = check(leaf, source=Source.of(parent, leaf))
    assert_refused(result, ErrorCode.GRANT_WIDENS)
    with pytest.raises(AuthorityError) as exc:
        check_narrowing(leaf, parent)
    assert exc.value.code is ErrorCode.GRANT_WIDENS


def _catalog(version: int = 1, village: Mode | None = Mode.PROXY) -> CatalogRelease:
    modes = {"city": Mode.DIRECT, "town": Mode.SAME_POWER} | ({"village": village} if village else {})
    item = Item(
        "GA-0001", "出生登记", "Birth registration", "海宁市公安局", Audience.PERSONAL, 0, (), True, modes
    )
    return CatalogRelease(version, T0, T0 + 120 * DAY, (item,))


def test_catalog_must_offer_the_item_at_the_nodes_tier() -> None:
    assert check(catalog=_catalog(), tier="village").ok
    assert_refused(check(catalog=_catalog(village=None), tier="village"), ErrorCode.GRANT_MODE)
    assert_refused(check(item="YB-0001", catalog=_catalog(), tier="village"), ErrorCode.GRANT_ITEM)


def test_a_missing_catalog_release_degrades_to_stale() -> None:
    for catalog in (None, _catalog(version=2)):
        result = check(catalog=catalog, tier="village")
        assert result.verdict is Verdict.STALE and result.code is ErrorCode.GRANT_CATALOG


# -- authorize: properties --------------------------------------------------------------

_times = st.integers(0, 10**7)


@st.composite
def root_grants(draw: st.DrawFn, min_depth: int = 1) -> Grant:
    nbf = draw(_times)
    return grant(
        f"root-{draw(st.integers(0, 10**9))}",
        items=tuple(sorted(draw(st.sets(st.sampled_from(ITEMS), min_size=1)))),
        mode=draw(st.sampled_from(list(Mode))),
        nbf=nbf,
        exp=nbf + draw(st.integers(1, 10**7)),
        depth=draw(st.integers(min_depth, 3)),
    )


@st.composite
def narrowed(draw: st.DrawFn, parent: Grant) -> Grant:
    """A lawful sub-grant of ``parent`` (whose depth must be at least 1)."""
    nbf = draw(st.integers(parent.nbf, parent.exp - 1))
    return grant(
        f"child-{draw(st.integers(0, 10**9))}",
        issuer=parent.aud,
        aud=VILLAGE,
        items=tuple(sorted(draw(st.sets(st.sampled_from(parent.items), min_size=1)))),
        mode=draw(st.sampled_from([m for m in Mode if m <= parent.mode])),
        nbf=nbf,
        exp=draw(st.integers(nbf + 1, parent.exp)),
        depth=draw(st.integers(0, parent.depth - 1)),
        parent=parent.id,
    )


def _ask(child: Grant, parent: Grant, data: st.DataObject, at: int | None = None) -> Authorization:
    item = data.draw(st.sampled_from(child.items))
    mode = data.draw(st.sampled_from([m for m in Mode if m <= child.mode]))
    when = at if at is not None else data.draw(st.integers(child.nbf, child.exp))
    return check(child, source=Source.of(parent, child), item=item, mode=mode, at=when)


@given(st.data())
def test_property_lawful_narrowing_verifies(data: st.DataObject) -> None:
    parent = data.draw(root_grants())
    child = data.draw(narrowed(parent))
    assert _ask(child, parent, data).ok
    # Outside the child's window the answer degrades, never refuses.
    late = _ask(child, parent, data, at=child.exp + data.draw(st.integers(1, 10**6)))
    assert late.verdict is Verdict.STALE and late.code is ErrorCode.GRANT_EXPIRED


@given(st.data(), st.sampled_from(["items", "mode", "nbf", "exp", "depth", "flat_parent"]))
def test_property_no_widening_ever_verifies(data: st.DataObject, how: str) -> None:
    parent = data.draw(root_grants())
    child = data.draw(narrowed(parent))
    if how == "items":
        extra = set(ITEMS) - set(parent.items)
        assume(extra)
        child = replace(child, items=tuple(sorted({*child.items, data.draw(st.sampled_from(sorted(extra)))})))
    elif how == "mode":
        assume(parent.mode is not Mode.SAME_POWER)
        child = replace(child, mode=data.draw(st.sampled_from([m for m in Mode if m > parent.mode])))
    elif how == "nbf":
        assume(parent.nbf > 0)
        child = replace(child, nbf=data.draw(st.integers(0, parent.nbf - 1)))
    elif how == "exp":
        child = replace(child, exp=parent.exp + data.draw(st.integers(1, 10**6)))
    elif how == "depth":
        child = replace(child, depth=data.draw(st.integers(parent.depth, parent.depth + 3)))
    else:
        parent = replace(parent, depth=0)
        child = replace(child, parent=parent.id)
    expected = ErrorCode.GRANT_DEPTH if how in ("depth", "flat_parent") else ErrorCode.GRANT_WIDENS
    with pytest.raises(AuthorityError) as exc:
        check_narrowing(child, parent)
    assert exc.value.code is expected
    # Whatever is asked, and whenever: never OK, never merely stale.
    result = check(
        child,
        source=Source.of(parent, child),
        item=data.draw(st.sampled_from(child.items)),
        mode=data.draw(st.sampled_from(list(Mode))),
        at=data.draw(_times),
    )
    assert result.verdict is Verdict.REFUSED


@given(st.data())
def test_property_revocation_is_honoured(data: st.DataObject) -> None:
    parent = data.draw(root_grants())
    child = data.draw(narrowed(parent))
    target, revoker = data.draw(st.sampled_from([(child, child.issuer), (child, ROOT), (parent, ROOT)]))
    at = data.draw(st.integers(child.nbf, child.exp))
    effective = data.draw(st.integers(0, 2 * 10**7))
    source = Source.of(parent, child, revocations=[Revocation(target.id, effective, "撤销", revoker)])
    result = check(child, source=source, item=child.items[0], mode=Mode.PROXY, at=at)
    if effective <= at:
        assert_refused(result, ErrorCode.GRANT_REVOKED)
    else:
        assert result.ok


@given(st.data(), st.sampled_from([OTHER_TOWN, ROOT, VILLAGE]))
def test_property_principal_alignment(data: st.DataObject, wrong_issuer: str) -> None:
    parent = data.draw(root_grants())
    child = replace(data.draw(narrowed(parent)), issuer=wrong_issuer)
    assume(child.aud != wrong_issuer)
    with pytest.raises(AuthorityError) as exc:
        check_narrowing(child, parent)
    assert exc.value.code is ErrorCode.GRANT_AUDIENCE
    result = _ask(child, parent, data)
    assert result.verdict is Verdict.REFUSED and result.code is ErrorCode.GRANT_AUDIENCE
