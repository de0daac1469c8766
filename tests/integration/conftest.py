"""Fixtures of the integration tests: Debian's chromium under Playwright (``browser``, a
fresh ``page`` per test) for the browser tests, and Debian's RabbitMQ (``rabbit``, one per
session; ``broker``, emptied for each test) for the department tests. Both are installed by
``make test`` (scripts/system-deps.sh)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from kombu import Connection
from playwright.sync_api import Browser, Page, sync_playwright

from central.department.contract import SERVICE, dead_queue_name, queue_name
from tongban import rabbitmq
from tongban.rabbitmq import Broker, BrokerSetup

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="zh-CN")
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    try:
        yield pg
    finally:
        context.close()


# -- a private RabbitMQ, one per test session ------------------------------------------------

DEPARTMENTS = ("330481GA", "330481RS", "330481YB")
"""The departments the session's broker has users for (each test enrolls the ones it needs)."""


@pytest.fixture(scope="session")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Debian's rabbitmq-server on random loopback ports in a temporary directory, with its
    own epmd, stopped by PID at the end of the session (scripts/system-deps.sh installs it)."""
    if not rabbitmq.installed():
        pytest.skip("rabbitmq-server is not installed: scripts/system-deps.sh installs it")
    broker = Broker(BrokerSetup(tmp_path_factory.mktemp("rabbitmq"), DEPARTMENTS))
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def broker(rabbit: Broker) -> Broker:
    """The session's broker with no department queue and no RPC queue left from a test before."""
    with Connection(rabbit.setup.uri(rabbitmq.CENTRAL_USER)) as connection:
        channel = connection.channel()
        for code in DEPARTMENTS:
            for name in (queue_name(code), dead_queue_name(code)):
                channel.queue_delete(name)
        channel.queue_delete(f"rpc-{SERVICE}")
    return rabbit
