"""A private RabbitMQ for the demo and the tests: Debian's broker in a directory of its own.

Debian's ``rabbitmq-server`` is installed by ``scripts/system-deps.sh`` and never started by
the install. This starts it without systemd and without the ``/usr/sbin`` wrappers (which
run ``su rabbitmq`` and so read another Erlang cookie): ``/usr/lib/rabbitmq/bin`` with
``HOME`` set to the directory, its own epmd on its own port, every listener on 127.0.0.1
(AMQP, the distribution port, epmd), no plugins, no ``/etc/rabbitmq`` file read.

The broker's users, permissions and the events exchange come from a definitions file
loaded at boot (:meth:`BrokerSetup.definitions`): central's user may do everything; each
department's user may read its own queue and its own RPC reply queues and publish RPC
requests to central's two methods only (RabbitMQ's topic permissions) — and the broker
validates the ``user_id`` of every message against the user that sent it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from central.department.contract import EVENTS_EXCHANGE, SERVICE, queue_name
from core.errors import ConfigError, ErrorCode

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
EPMD = Path("/usr/bin/epmd")
CENTRAL_USER = "tongban-central"


def installed() -> bool:
    """Whether Debian's rabbitmq-server (and epmd) are installed here."""
    return (RABBITMQ_BIN / "rabbitmq-server").is_file() and EPMD.is_file()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt ‖ SHA-256(salt ‖ password))."""
    salt = salt if salt is not None else os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


@dataclass
class BrokerSetup:
    """Where a private broker lives and who may use it."""

    base: Path
    departments: Sequence[str] = ()
    port: int = field(default_factory=free_port)
    epmd_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    passwords: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for user in (CENTRAL_USER, *self.departments):
            self.passwords.setdefault(user, secrets.token_urlsafe(18))

    @property
    def node(self) -> str:
        return f"tongban{self.port}@localhost"

    def uri(self, user: str) -> str:
        return f"amqp://{quote(user, safe='')}:{quote(self.passwords[user], safe='')}@127.0.0.1:{self.port}/"

    def definitions(self) -> dict[str, Any]:
        users = [CENTRAL_USER, *self.departments]
        permissions = [{"user": CENTRAL_USER, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]
        topics = []
        for code in self.departments:
            replies = rf"rpc\.reply-{code}-.*"
            permissions.append(
                {
                    "user": code,
                    "vhost": "/",
                    "configure": f"^({replies}|nameko-rpc)$",
                    "write": f"^({replies}|nameko-rpc)$",
                    "read": f"^({replies}|nameko-rpc|{re.escape(queue_name(code))})$",
                }
            )
            topics.append(
                {
                    "user": code,
                    "vhost": "/",
                    "exchange": "nameko-rpc",
                    "write": rf"^{SERVICE}\.(submit|contact)$",
                    "read": ".*",
                }
            )
        return {
            "users": [
                {
                    "name": user,
                    "password_hash": password_hash(self.passwords[user]),
                    "hashing_algorithm": "rabbit_password_hashing_sha256",
                    "tags": [],
                }
                for user in users
            ],
            "vhosts": [{"name": "/"}],
            "permissions": permissions,
            "topic_permissions": topics,
            "exchanges": [
                {
                    "name": name,
                    "vhost": "/",
                    "type": "topic",
                    "durable": True,
                    "auto_delete": False,
                    "internal": False,
                    "arguments": {},
                }
                for name in (EVENTS_EXCHANGE, "nameko-rpc")
            ],
        }

    def write(self) -> None:
        """The broker's directory: config, definitions, no plugins (mode 0700: it holds hashes)."""
        for sub in ("mnesia", "log"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o700)
        (self.base / "enabled_plugins").write_text("[].\n", encoding="utf-8")
        (self.base / "definitions.json").write_text(
            json.dumps(self.definitions(), indent=1), encoding="utf-8"
        )
        (self.base / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    f"listeners.tcp.default = 127.0.0.1:{self.port}",
                    "loopback_users = none",
                    "definitions.import_backend = local_filesystem",
                    f"definitions.local.path = {self.base / 'definitions.json'}",
                    "log.console = false",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        (self.base / "rabbitmq-env.conf").write_text(
            "# every setting is in the environment\n", encoding="utf-8"
        )

    def env(self) -> dict[str, str]:
        b = str(self.base)
        return {
            "HOME": b,
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": f"{b}/mnesia",
            "RABBITMQ_LOG_BASE": f"{b}/log",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{b}/enabled_plugins",
            "RABBITMQ_CONF_ENV_FILE": f"{b}/rabbitmq-env.conf",
            "RABBITMQ_CONFIG_FILE": f"{b}/rabbitmq.conf",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def server_command(self) -> list[str]:
        return [str(RABBITMQ_BIN / "rabbitmq-server")]

    def epmd_command(self) -> list[str]:
        return [str(EPMD), "-port", str(self.epmd_port), "-address", "127.0.0.1"]

    def ctl(self, *args: str) -> str:
        """``rabbitmqctl`` against this broker; its output."""
        result = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args],
            env={**os.environ, **self.env()},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout


def wait_for_port(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise ConfigError(ErrorCode.CONFIG, f"the broker did not open port {port}") from None
            time.sleep(0.1)


class Broker:
    """A private broker run by this process: started, stopped and killed by PID."""

    def __init__(self, setup: BrokerSetup) -> None:
        self.setup = setup
        self._epmd: subprocess.Popen[bytes] | None = None
        self._server: subprocess.Popen[bytes] | None = None

    def start(self, seconds: float = 90) -> float:
        """Start epmd (once) and the broker; the seconds until it accepted connections."""
        began = time.monotonic()
        env = {**os.environ, **self.setup.env()}
        if self._epmd is None:
            self.setup.write()
            self._epmd = subprocess.Popen(self.setup.epmd_command(), env=env)
        log = (self.setup.base / "log" / "server.out").open("ab")
        self._server = subprocess.Popen(
            self.setup.server_command(), env=env, stdout=log, stderr=subprocess.STDOUT
        )
        wait_for_port(self.setup.port, seconds)
        return time.monotonic() - began

    def beam_pid(self) -> int | None:
        """The Erlang VM's PID (the server script's child)."""
        if self._server is None:
            return None
        found = subprocess.run(
            ["pgrep", "-P", str(self._server.pid), "beam.smp"], capture_output=True, text=True
        )
        pids = found.stdout.split()
        return int(pids[0]) if pids else None

    def stop(self) -> None:
        """A graceful stop (SIGTERM to the server script, which stops the VM)."""
        if self._server is not None:
            self._server.terminate()
            try:
                self._server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill9()
            self._server = None

    def kill9(self) -> None:
        """A crash: SIGKILL the VM itself, then reap its script."""
        beam = self.beam_pid()
        if beam is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(beam, signal.SIGKILL)
        if self._server is not None:
            self._server.kill()
            self._server.wait(timeout=30)
            self._server = None

    def close(self) -> None:
        """Stop the broker and epmd; nothing of either is left running."""
        self.stop()
        if self._epmd is not None:
            self._epmd.terminate()
            self._epmd.wait(timeout=30)
            self._epmd = None
