"""Fixtures of the integration tests: Debian's chromium under Playwright (``browser``, a
fresh ``page`` per test) for the browser tests, and Debian's RabbitMQ (``rabbit``, one per
session; ``broker``, emptied for each test) for the department tests. Both are installed by
``make test`` (scripts/system-deps.sh)."""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection
from playwright.sync_api import Browser, Page, sync_playwright

from central.department.contract import SERVICE, dead_queue_name, queue_name
from tongban import rabbitmq
from tongban.rabbitmq import Broker, BrokerSetup, Tls

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
    base = tmp_path_factory.mktemp("rabbitmq")
    tls = Tls(rabbitmq.free_port(), *make_certificates(base / "tls"))
    broker = Broker(BrokerSetup(base, DEPARTMENTS, tls=tls))
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


def make_certificates(folder: Path) -> tuple[str, str, str]:
    """A CA and a certificate for 127.0.0.1 signed by it (openssl): cert, key, CA."""
    folder.mkdir(parents=True)
    ca, ca_key, cert, key = (str(folder / n) for n in ("ca.pem", "ca.key", "cert.pem", "key.pem"))
    run = functools.partial(subprocess.run, check=True, capture_output=True)
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=tongban-test-ca", "-keyout", ca_key, "-out", ca])  # fmt: skip
    csr = str(folder / "cert.csr")
    run(
        [
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            key,
            "-out",
            csr,
        ]
    )
    ext = folder / "san.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n", encoding="utf-8")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
         "-extfile", str(ext), "-out", cert])  # fmt: skip
    return cert, key, ca


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
