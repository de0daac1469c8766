"""Enrollment takes a one-time token that central issued for the node's code (threat 11).

Whoever carries a request to central could otherwise have any key certified for any code
central has not certified yet. Central issues a token for one code (``tongban central
enroll-token``), shown once, keeping only its SHA-256; the node signs it into its request;
``enroll`` certifies only against a valid unused token for that code and uses it up in
the same transaction as the certificate. Every refusal names its code and leaves the log
and the tokens as they were (the refused request is noted for audit, as every refused
request is).
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from central import authority
from core.errors import EnrollmentError, ErrorCode
from node import identity
from sync.record.enrollment import make_request, read_request
from tests.helpers import CITY, TOWN, VILLAGE, Network, fixed_keys, make_network, seeded_random
from tongban.cli import main

TOWN_2 = "330481105"


@pytest.fixture
def net(tmp_path: Path) -> Network:
    return make_network(tmp_path)


def _issue(net: Network, code: str, hours: int = 24) -> str:
    with authority.open_central(net.central_dir, net.clock) as central:
        token, _ = authority.issue_enroll_token(central, code, valid_hours=hours, random=seeded_random(code))
    return token


def _request(net: Network, code: str, token: str | None, label: str = "") -> bytes:
    keys = fixed_keys(label or code)
    return make_request(
        keys,
        code=code,
        tier="town",
        name="许村镇便民服务中心",
        parent=CITY,
        sign_pk=keys.sign_public,
        curve_pk=keys.curve_public,
        ts=net.clock.now(),
        token=token,
    )


def _stored(net: Network) -> dict[str, list[tuple[Any, ...]]]:
    """Everything central stores but the audit of requests seen."""
    conn = sqlite3.connect(net.central_dir / "central.db")
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            n: sorted(conn.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr)
            for n in names
            if n != "enrollment_requests"
        }
    finally:
        conn.close()


def _refused(net: Network, request: bytes) -> ErrorCode:
    before = _stored(net)
    with authority.open_central(net.central_dir, net.clock) as central:
        with pytest.raises(EnrollmentError) as info:
            authority.enroll(central, request)
        noted = central.store.db.conn.execute(
            "SELECT outcome, cert_id FROM enrollment_requests WHERE request_id = ?",
            (read_request(request).id,),
        ).fetchone()
    assert _stored(net) == before  # no certificate, no token used
    assert noted == (info.value.code.value, None)  # the audit says what was refused, and why
    return info.value.code


def test_a_request_with_the_token_for_its_code_is_certified_and_uses_the_token_up(net: Network) -> None:
    token = _issue(net, TOWN)
    request = _request(net, TOWN, token)
    with authority.open_central(net.central_dir, net.clock) as central:
        cert, _ = authority.enroll(central, request)
        row = central.store.db.conn.execute(
            "SELECT digest, code, used_at, cert_id FROM enrollment_tokens"
        ).fetchone()
    assert row[0] == hashlib.sha256(token.replace("-", "").encode()).digest() and row[1] == TOWN
    assert row[2] is not None and bytes(row[3]) == cert.id
    # A token not used yet is nowhere in central's files; a used one enrolls nothing more (it
    # is inside the request its certificate carries, as evidence of what was enrolled).
    unused = _issue(net, TOWN_2)
    files = b"".join(f.read_bytes() for f in net.central_dir.glob("central.db*"))
    assert unused.replace("-", "").encode() not in files


def test_a_request_without_a_token_is_refused(net: Network) -> None:
    request = _request(net, TOWN, None)  # an old request, format 1: still readable
    assert read_request(request).token is None
    assert _refused(net, request) is ErrorCode.ENROLL_TOKEN_MISSING


def test_a_wrong_token_is_refused(net: Network) -> None:
    _issue(net, TOWN)
    wrong = _issue(net, TOWN_2)[:-4] + "AAAA"
    assert _refused(net, _request(net, TOWN, wrong)) is ErrorCode.ENROLL_TOKEN


def test_a_used_token_is_refused(net: Network) -> None:
    token = _issue(net, TOWN)
    with authority.open_central(net.central_dir, net.clock) as central:
        authority.enroll(central, _request(net, TOWN, token))
        authority.revoke_node(central, TOWN, reason="换机")  # the code is free again
    assert _refused(net, _request(net, TOWN, token, label="another machine")) is ErrorCode.ENROLL_TOKEN_USED


def test_an_expired_token_is_refused(net: Network) -> None:
    token = _issue(net, TOWN, hours=2)
    net.clock.advance(2 * 3600)
    assert _refused(net, _request(net, TOWN, token)) is ErrorCode.ENROLL_TOKEN_EXPIRED


def test_a_token_for_another_code_is_refused(net: Network) -> None:
    token = _issue(net, TOWN_2)
    assert _refused(net, _request(net, TOWN, token)) is ErrorCode.ENROLL_TOKEN_CODE


def test_a_token_is_issued_only_for_a_code_central_may_certify(net: Network) -> None:
    before = _stored(net)
    with authority.open_central(net.central_dir, net.clock) as central:
        for code, refused in (
            ("330482104", ErrorCode.ENROLL_PARENT),  # another city's town
            (CITY, ErrorCode.ENROLL_TIER),  # central itself
            ("33048110", ErrorCode.ENROLL_TIER),  # no node's code
        ):
            with pytest.raises(EnrollmentError) as info:
                authority.issue_enroll_token(central, code)
            assert info.value.code is refused
    assert _stored(net) == before


def test_the_commands_issue_a_token_remake_the_request_and_enroll(net: Network, tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: object, stdin: str | None = None) -> str:
        result = runner.invoke(main, [str(a) for a in args], input=stdin)
        assert result.exit_code == 0, result.output
        return result.output

    home = tmp_path / "town"
    run("node", "init", home, "--tier", "town", "--code", TOWN, "--name", "许村镇", "--parent-code", CITY)
    request = home / "enroll-request.cbor"
    refused = runner.invoke(main, ["central", "enroll", str(net.central_dir), str(request)])
    assert refused.exit_code == 3 and ErrorCode.ENROLL_TOKEN_MISSING.value in refused.output
    token = run("central", "enroll-token", net.central_dir, TOWN, "--valid-hours", 4).splitlines()[0]
    run("node", "request", home, "--token", "-", stdin=token + "\n")  # kept out of the process list
    assert read_request((home / "enroll-request.cbor").read_bytes()).token == token.replace("-", "")
    run("central", "enroll", net.central_dir, home / "enroll-request.cbor", "--out", tmp_path / "t.bundle")
    run("node", "enroll", home, tmp_path / "t.bundle", "--anchor", net.fingerprint)
    again = runner.invoke(main, ["node", "request", str(home), "--token", token])
    assert again.exit_code == 3 and ErrorCode.ALREADY_ENROLLED.value in again.output


def test_init_with_a_token_writes_a_request_central_certifies(net: Network, tmp_path: Path) -> None:
    token = _issue(net, TOWN)
    result = identity.init(
        tmp_path / "t", tier="town", code=TOWN, name="x", parent=CITY, clock=net.clock, token=token
    )
    with authority.open_central(net.central_dir, net.clock) as central:
        cert, _ = authority.enroll(central, result.request_path.read_bytes())
    assert cert.body["node"] == TOWN
    home = net.add_node(VILLAGE, "village", TOWN)  # the tests' own helper issues tokens too
    assert (home / "node.db").exists()


def test_init_with_text_that_is_no_token_makes_nothing(net: Network, tmp_path: Path) -> None:
    with pytest.raises(EnrollmentError) as info:
        identity.init(
            tmp_path / "t", tier="town", code=TOWN, name="x", parent=CITY, clock=net.clock, token="ABCD-1234"
        )
    assert info.value.code is ErrorCode.ENROLL_TOKEN and not (tmp_path / "t").exists()
