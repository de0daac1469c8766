"""Nobody can lock a clerk out: the login backoff counts per (user name, source address).

On a real node store with a fixed clock: failures from one address never slow another
down, the backoff grows as it always did but per pair, names that exist and names that do
not are throttled alike, a disabled account answers as a wrong password does, the table
stays bounded, and an admin lifts a backoff from the command line. The live web service
(the admin page's button, the answers' timing) is in ``test_web_hardening.py``.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from central import authority
from central.admins import admins
from core.clock import FixedClock
from core.errors import AuthorityError, ErrorCode
from node.desk import Desk
from sync.record.db import MIGRATIONS_TABLE, transaction
from tests.helpers import VILLAGE, make_network, open_desk
from tests.integration.webnode import PASSWORD
from web import account_store
from web.accounts import THROTTLE_MAX, hash_password

HERE, THERE = "10.20.3.7", "10.20.3.99"  # the clerk's window, and someone else's machine


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("net")
    net = make_network(root, FixedClock())
    net.add_node("330481104", "town", "330481", name="许村镇便民服务中心")
    net.add_node(VILLAGE, "village", "330481104", name="新阳村便民服务中心")
    with open_desk(net.node_dir(VILLAGE), net.clock) as desk:
        desk.clerks.add(desk.keys, "wangli", "王丽", ["clerk"], hash_password(PASSWORD), actor="sys:test")
    with authority.open_central(net.central_dir, net.clock) as central:
        admins(central).add(central, "shixiang", "施事项", ["catalog_admin"], hash_password(PASSWORD), "t")
    return root


@pytest.fixture
def root(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "net"
    shutil.copytree(built, copy)
    return copy


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(t=1_795_400_000, step=0)


@pytest.fixture
def desk(root: Path, clock: FixedClock) -> Iterator[Desk]:
    with open_desk(root / VILLAGE, clock) as opened:
        yield opened


def _code(desk: Desk, user: str, password: str, source: str) -> ErrorCode | None:
    try:
        desk.clerks.check_login(user, password, source)
    except AuthorityError as exc:
        return exc.code
    return None


def test_failures_from_one_address_never_slow_another_down(desk: Desk, clock: FixedClock) -> None:
    assert [_code(desk, "wangli", "wrong password", THERE) for _ in range(3)] == [ErrorCode.LOGIN_FAILED] * 3
    assert _code(desk, "wangli", PASSWORD, THERE) is ErrorCode.LOGIN_THROTTLED
    assert _code(desk, "wangli", PASSWORD, HERE) is None  # at her own window she logs in at once
    for _ in range(20):  # however long the other machine goes on
        clock.advance(THROTTLE_MAX)
        assert _code(desk, "wangli", "wrong password", THERE) is ErrorCode.LOGIN_FAILED
        assert _code(desk, "wangli", PASSWORD, HERE) is None


def test_the_backoff_doubles_per_pair_from_the_third_failure_up_to_fifteen_minutes(
    desk: Desk, clock: FixedClock
) -> None:
    waits = []
    for _ in range(12):
        assert _code(desk, "wangli", "wrong password", THERE) is ErrorCode.LOGIN_FAILED
        backoff = account_store.failures(desk.db, "wangli", THERE)
        assert backoff is not None
        waits.append(max(0, backoff.locked_until - clock.now()))
        clock.advance(waits[-1])
    assert waits == [0, 0, 5, 10, 20, 40, 80, 160, 320, 640, 900, 900]
    assert _code(desk, "wangli", PASSWORD, THERE) is None  # the lock has ended: a good login clears it
    assert account_store.failures(desk.db, "wangli", THERE) is None


def test_a_throttled_answer_says_when_to_try_again_in_the_readers_language(desk: Desk) -> None:
    for _ in range(3):
        _code(desk, "wangli", "wrong password", THERE)
    with pytest.raises(AuthorityError) as err:
        desk.clerks.check_login("wangli", PASSWORD, THERE)
    assert err.value.code is ErrorCode.LOGIN_THROTTLED
    assert "5 秒后可再试" in err.value.text("zh") and "try again in 5 s" in err.value.text("en")


def test_names_that_do_not_exist_are_counted_and_throttled_alike(desk: Desk) -> None:
    known = [_code(desk, "wangli", "wrong password", THERE) for _ in range(4)]
    unknown = [_code(desk, "nobody", "wrong password", THERE) for _ in range(4)]
    assert known == unknown == [ErrorCode.LOGIN_FAILED] * 3 + [ErrorCode.LOGIN_THROTTLED]
    assert account_store.failures(desk.db, "nobody", THERE) == account_store.failures(
        desk.db, "wangli", THERE
    )


def test_a_disabled_account_never_confirms_its_password(desk: Desk) -> None:
    desk.clerks.set_active(desk.keys, "wangli", False, actor="sys:test")
    right = [_code(desk, "wangli", PASSWORD, THERE) for _ in range(4)]
    wrong = [_code(desk, "nobody", "wrong password", THERE) for _ in range(4)]
    assert right == wrong == [ErrorCode.LOGIN_FAILED] * 3 + [ErrorCode.LOGIN_THROTTLED]


def test_the_backoff_table_stays_bounded(desk: Desk, clock: FixedClock) -> None:
    db = desk.db
    for n in range(50):  # a day ago, from fifty addresses
        account_store.record_failure(db, "wangli", f"10.1.0.{n}", 1, 0, clock.now())
    clock.advance(account_store.FAILURES_KEPT_SECONDS + 1)
    _code(desk, "wangli", "wrong password", THERE)
    assert _rows(db) == [("wangli", THERE)]  # idle pairs are swept
    with transaction(db):  # a flood of names and addresses, cheaply
        for n in range(account_store.FAILURES_KEPT_ROWS + 100):
            account_store.record_failure(db, f"u{n}", f"10.2.{n // 250}.{n % 250}", 1, 0, clock.now() + n)
    assert len(_rows(db)) == account_store.FAILURES_KEPT_ROWS  # the oldest went first
    assert ("wangli", THERE) not in _rows(db)


def _rows(db: object) -> list[tuple[str, str]]:
    conn = db.conn  # type: ignore[attr-defined]
    return [(str(u), str(s)) for u, s in conn.execute("SELECT user, source FROM login_failures").fetchall()]


def test_a_user_name_or_address_of_any_length_is_kept_bounded(desk: Desk) -> None:
    _code(desk, "x" * 60_000, "wrong password", "y" * 60_000)
    assert [(len(u), len(s)) for u, s in _rows(desk.db)] == [(64, 64)]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tongban", *args], capture_output=True, text=True, timeout=120
    )


def test_an_admin_unlocks_a_clerk_from_the_command_line(root: Path, clock: FixedClock) -> None:
    with open_desk(root / VILLAGE, clock) as desk:
        for source in (THERE, "10.20.3.100"):
            for _ in range(3):
                _code(desk, "wangli", "wrong password", source)
        assert desk.clerks.backed_off() == {"wangli": 2}
    done = _cli("node", "clerk", "unlock", str(root / VILLAGE), "wangli")
    assert done.returncode == 0 and "unlocked wangli (2 address(es)" in done.stdout
    with open_desk(root / VILLAGE, clock) as desk:
        assert desk.clerks.backed_off() == {}
        assert _code(desk, "wangli", PASSWORD, THERE) is None
    unknown = _cli("node", "clerk", "unlock", str(root / VILLAGE), "nobody")
    assert unknown.returncode == 3 and "E_ACCOUNT_UNKNOWN" in unknown.stderr


def test_an_operator_is_unlocked_the_same_way_at_central(root: Path, clock: FixedClock) -> None:
    with authority.open_central(root / "central", clock) as central:
        accounts = admins(central)
        for _ in range(3):
            with pytest.raises(AuthorityError):
                accounts.check_login("shixiang", "wrong password", THERE)
        with pytest.raises(AuthorityError) as err:
            accounts.check_login("shixiang", PASSWORD, THERE)
        assert err.value.code is ErrorCode.LOGIN_THROTTLED
        accounts.check_login("shixiang", PASSWORD, HERE)
    done = _cli("central", "admin", "unlock", str(root / "central"), "shixiang")
    assert done.returncode == 0 and "unlocked shixiang (1 address(es)" in done.stdout
    with authority.open_central(root / "central", clock) as central:
        admins(central).check_login("shixiang", PASSWORD, THERE)


def test_the_backoff_table_is_a_migration_of_its_own_in_each_store(root: Path) -> None:
    for db, migration in (
        (root / VILLAGE / "node.db", ("node", "0003_login_failures")),
        (root / "central" / "central.db", ("central", "0006_login_failures")),
    ):
        conn = sqlite3.connect(db)
        try:
            applied = conn.execute(f"SELECT migration_set, name FROM {MIGRATIONS_TABLE}").fetchall()
        finally:
            conn.close()
        assert migration in applied
