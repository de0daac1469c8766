"""Identity and enrollment on real directories, key files and SQLite stores."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from central import authority
from core.errors import EnrollmentError, ErrorCode, InputError, KeyFileError
from node import identity
from node.store import NodeStore
from sync.record import keys
from sync.record.enrollment import make_request
from tests.helpers import CITY, TOWN, VILLAGE, VILLAGE_2, Network, fixed_keys, make_network, seeded_random


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return make_network(tmp_path)


def enroll_error(net: Network, request: bytes) -> ErrorCode:
    with authority.open_central(net.central_dir, net.clock) as central:
        with pytest.raises(EnrollmentError) as info:
            authority.enroll(central, request)
        count = central.store.log.count()
    assert count == _central_count(net)
    return info.value.code


def _central_count(net: Network) -> int:
    with authority.open_central(net.central_dir, net.clock) as central:
        return central.store.log.count()


def test_town_and_villages_enroll(net: Network) -> None:
    net.add_node(TOWN, "town", CITY)
    home = net.add_node(VILLAGE, "village", TOWN)
    net.add_node(VILLAGE_2, "village", TOWN)
    with NodeStore.open(home / "node.db", net.clock) as store:
        head = store.log.head(VILLAGE)
        codes = {row[0] for row in store.db.conn.execute("SELECT code FROM certs")}
    assert head is not None and head.seq == 1
    assert {CITY, TOWN, VILLAGE} <= codes


def test_key_file_is_private_and_never_overwritten(net: Network) -> None:
    home = net.add_node(TOWN, "town", CITY)
    key_path = home / "keys" / "node.key"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "keys").stat().st_mode) == 0o700
    before = key_path.read_bytes()
    with pytest.raises(KeyFileError) as info:
        keys.write_key_file(key_path, fixed_keys("other"), 0)
    assert info.value.code is ErrorCode.KEY_FILE_EXISTS
    assert key_path.read_bytes() == before


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    keys.write_key_file(path, fixed_keys("k"), 0)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError) as info:
        keys.load_key_file(path)
    assert info.value.code is ErrorCode.KEY_FILE_MODE


def test_edited_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    keys.write_key_file(path, fixed_keys("k"), 0)
    text = path.read_text().replace("sign-public: ", "sign-public: 00", 1)
    os.chmod(path, 0o600)
    path.write_text(text)
    with pytest.raises(KeyFileError) as info:
        keys.load_key_file(path)
    assert info.value.code is ErrorCode.KEY_FILE_FORMAT


def test_bad_proof_of_possession_is_refused(net: Network) -> None:
    claimed = fixed_keys("claimed")
    request = request_for(
        TOWN,
        "town",
        CITY,
        signer=fixed_keys("somebody-else"),
        sign_pk=claimed.sign_public,
        curve_pk=claimed.curve_public,
        name="斜桥镇",
    )
    assert enroll_error(net, request) is ErrorCode.ENROLL_POP


def request_for(
    code: str,
    tier: str,
    parent: str,
    *,
    signer: keys.NodeKeys | None = None,
    sign_pk: bytes | None = None,
    curve_pk: bytes | None = None,
    name: str = "x",
    token: str | None = None,
) -> bytes:
    """A request for ``code``, by default well formed and signed by its own new key."""
    k = signer or fixed_keys(f"req-{code}-{parent}")
    return make_request(
        k,
        code=code,
        tier=tier,
        name=name,
        parent=parent,
        sign_pk=sign_pk or k.sign_public,
        curve_pk=curve_pk or k.curve_public,
        ts=1,
        token=token,
    )


def test_wrong_parent_is_refused(net: Network) -> None:
    assert enroll_error(net, request_for(VILLAGE, "village", "330481105")) is ErrorCode.ENROLL_PARENT


def test_village_before_its_town_is_refused(net: Network) -> None:
    assert enroll_error(net, request_for(VILLAGE, "village", TOWN)) is ErrorCode.ENROLL_PARENT


def test_tier_that_does_not_fit_the_code_is_refused(net: Network) -> None:
    assert enroll_error(net, request_for(VILLAGE, "town", TOWN)) is ErrorCode.ENROLL_TIER


def test_other_city_is_refused(net: Network) -> None:
    assert enroll_error(net, request_for("330482104", "town", "330482")) is ErrorCode.ENROLL_PARENT


def test_duplicate_code_is_refused(net: Network) -> None:
    net.add_node(TOWN, "town", CITY)
    assert enroll_error(net, request_for(TOWN, "town", CITY)) is ErrorCode.ENROLL_CODE_TAKEN


def test_code_is_free_again_after_revocation(net: Network) -> None:
    net.add_node(TOWN, "town", CITY)
    with authority.open_central(net.central_dir, net.clock) as central:
        (revocation,) = authority.revoke_node(central, TOWN, reason="machine replaced")
        assert revocation.body["last_good_seq"] == 0  # central holds none of its records yet
        token, _ = authority.issue_enroll_token(central, TOWN)
        cert, _ = authority.enroll(central, request_for(TOWN, "town", CITY, token=token))
    assert cert.body["node"] == TOWN


def test_garbage_request_is_refused(net: Network) -> None:
    assert enroll_error(net, b"\x00garbage") is ErrorCode.ENROLL_REQUEST


def test_bundle_for_another_node_is_refused(net: Network) -> None:
    net.add_node(TOWN, "town", CITY)
    home = net.root / "other"
    identity.init(home, tier="town", code="330481105", name="x", parent=CITY, clock=net.clock)
    bundle = (net.central_dir / "bundles").glob("*")  # none written by the API path
    assert list(bundle) == []
    with authority.open_central(net.central_dir, net.clock) as central:
        data = authority.bundle_for(central, TOWN)
    with pytest.raises(EnrollmentError) as info:
        identity.enroll(home, data, clock=net.clock)
    assert info.value.code is ErrorCode.ENROLL_BUNDLE


def test_wrong_anchor_fingerprint_is_refused(net: Network) -> None:
    home = net.root / "t"
    with authority.open_central(net.central_dir, net.clock) as central:
        token, _ = authority.issue_enroll_token(central, TOWN)
    result = identity.init(home, tier="town", code=TOWN, name="x", parent=CITY, clock=net.clock, token=token)
    with authority.open_central(net.central_dir, net.clock) as central:
        _, bundle = authority.enroll(central, result.request_path.read_bytes())
    with pytest.raises(EnrollmentError) as info:
        identity.enroll(home, bundle, clock=net.clock, anchor_fingerprint="ab" * 32)
    assert info.value.code is ErrorCode.ENROLL_ANCHOR
    identity.enroll(home, bundle, clock=net.clock, anchor_fingerprint=net.fingerprint)
    with pytest.raises(EnrollmentError) as again:
        identity.enroll(home, bundle, clock=net.clock)
    assert again.value.code is ErrorCode.ALREADY_ENROLLED


def test_init_refuses_a_used_directory(tmp_path: Path) -> None:
    (tmp_path / "n").mkdir()
    (tmp_path / "n" / "file").write_text("x")
    with pytest.raises(InputError) as info:
        identity.init(tmp_path / "n", tier="town", code=TOWN, name="x", parent=CITY, clock=make_clock())
    assert info.value.code is ErrorCode.DIR_NOT_EMPTY


def test_init_refuses_inconsistent_identity(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        identity.init(
            tmp_path / "n", tier="village", code=VILLAGE, name="x", parent="330481105", clock=make_clock()
        )
    assert info.value.code is ErrorCode.TIER_MISMATCH
    assert not (tmp_path / "n").exists()


def make_clock():  # type: ignore[no-untyped-def]
    from core.clock import FixedClock

    return FixedClock()


def test_keys_are_generated_from_the_injected_source(tmp_path: Path) -> None:
    a = keys.generate(seeded_random("same"))
    b = keys.generate(seeded_random("same"))
    assert a.sign_public == b.sign_public and a.kid == b.kid


def test_expired_but_unrevoked_certificate_still_holds_its_code(tmp_path: Path) -> None:
    net = make_network(tmp_path)
    net.add_node(TOWN, "town", CITY)
    net.clock.advance(400 * 86_400)  # past the certificate's expiry
    assert enroll_error(net, request_for(TOWN, "town", CITY)) is ErrorCode.ENROLL_CODE_TAKEN


def test_reused_curve_key_is_refused(net: Network) -> None:
    net.add_node(TOWN, "town", CITY)
    town_keys = keys.load_key_file(net.node_dir(TOWN) / "keys" / "node.key")
    request = request_for(
        "330481105", "town", CITY, signer=fixed_keys("thief"), curve_pk=town_keys.curve_public
    )
    assert enroll_error(net, request) is ErrorCode.ENROLL_CODE_TAKEN
