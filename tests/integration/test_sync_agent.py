"""The child's agent over real sockets: back-off while the parent is unreachable, and the
link watch that starts a session within seconds of the parent coming back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sync.link.agent import FIRST_BACKOFF, Agent
from sync.link.endpoint import ParentServer
from sync.link.transport import SyncResult, Upstream
from tests.helpers import CITY, TOWN, VILLAGE, wait_for
from tests.integration.syncnet import City, build_city
from tests.integration.webnode import free_port


def _city(tmp_path: Path) -> City:
    city = build_city(tmp_path)
    with city.serving(CITY):
        assert city.sync(TOWN).ok
    with city.serving(TOWN):
        assert city.sync(VILLAGE).ok
    return city


def _town_key(city: City) -> bytes:
    opened = city.open(VILLAGE)
    try:
        row = opened.log.db.conn.execute("SELECT curve_pk FROM certs WHERE code = ?", (TOWN,)).fetchone()
        return bytes(row[0])
    finally:
        opened.close()


def _agent(city: City, endpoint: str, **options: Any) -> Agent:
    upstream = Upstream(endpoint, TOWN, _town_key(city))
    return Agent(lambda: city.open(VILLAGE), lambda home: [upstream], connect_timeout=1.0, **options)


def test_the_link_watch_starts_a_session_soon_after_the_parent_is_back(tmp_path: Path) -> None:
    city = _city(tmp_path)
    port = free_port()
    agent = _agent(city, f"tcp://127.0.0.1:{port}")
    try:
        agent.failures = 6  # long offline: the next try would be minutes away
        result = agent.tick()
        assert result is not None and not result.ok
        assert result.error is not None and result.error.code.value == "E_SYNC_UNREACHABLE"
        assert agent.watch is not None
        backoff_ends = agent.next_due
        assert backoff_ends - time.monotonic() > 50  # the back-off, capped at the interval

        server = ParentServer(lambda: city.open(TOWN), f"tcp://127.0.0.1:{port}").start()
        results: list[SyncResult] = []
        try:
            back = time.monotonic()
            wait_for(
                lambda: (result := agent.tick()) is not None and not results.append(result),
                "a session after the parent came back",
                seconds=30,
            )
        finally:
            server.stop()
        (ran,) = results
        assert ran.ok, ran.error
        assert time.monotonic() - back < FIRST_BACKOFF + 10
        assert agent.watch is None and agent.failures == 0
    finally:
        agent.close()


def test_a_parent_that_answers_but_refuses_is_not_watched(tmp_path: Path) -> None:
    """A refusal is no lost link: watching would retry at once, again and again."""
    city = _city(tmp_path)
    with city.serving(TOWN) as servers:
        # The town's endpoint, with a key that is not the town's: the handshake fails.
        upstream = Upstream(servers[TOWN].endpoint, TOWN, bytes(32))
        agent = Agent(lambda: city.open(VILLAGE), lambda home: [upstream], connect_timeout=1.0)
        try:
            result = agent.tick()
            assert result is not None and not result.ok and result.error is not None
            assert result.error.code.value != "E_SYNC_UNREACHABLE", result.error
            assert agent.watch is None
        finally:
            agent.close()


def test_without_a_watch_the_agent_backs_off(tmp_path: Path) -> None:
    city = _city(tmp_path)
    now = [1000.0]
    agent = _agent(city, f"tcp://127.0.0.1:{free_port()}", monotonic=lambda: now[0], watcher=None)
    delays = []
    for _ in range(4):
        now[0] = agent.next_due
        result = agent.tick()
        assert result is not None and not result.ok
        delays.append(agent.next_due - now[0])
        assert agent.tick() is None  # not due again yet
    assert delays == [FIRST_BACKOFF, 2 * FIRST_BACKOFF, 4 * FIRST_BACKOFF, 8 * FIRST_BACKOFF]
