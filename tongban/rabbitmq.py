"""A RabbitMQ of Tongban's own: Debian's broker in a directory of its own, for the demo, the
tests and central's host (``tongban provision broker``, which the Ansible role runs).

Debian's ``rabbitmq-server`` is installed by ``scripts/system-deps.sh`` and never started by
the install. This starts it without systemd and without the ``/usr/sbin`` wrappers (which
run ``su rabbitmq`` and so read another Erlang cookie): ``/usr/lib/rabbitmq/bin`` with
``HOME`` set to the directory, its own epmd on its own port, every listener on 127.0.0.1
(AMQP, the distribution port, epmd) unless the AMQP listeners are given, TLS where
certificate files are given, no plugins, no ``/etc/rabbitmq`` file read.

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
from core.departments import check_department_code
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
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt ‖ SHA-256(salt ‖ password)).

    The salt defaults to one derived from the password, so that writing the same users
    again writes the same file (a provisioning run that changes nothing)."""
    salt = (
        salt
        if salt is not None
        else hashlib.sha256(b"tongban/rabbitmq-salt\x00" + password.encode()).digest()[:4]
    )
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


@dataclass(frozen=True)
class Tls:
    """The broker's TLS listener: its port and certificate files (PEM paths on its host)."""

    port: int
    certfile: str
    keyfile: str
    cafile: str


@dataclass
class BrokerSetup:
    """Where a private broker lives and who may use it."""

    base: Path
    departments: Sequence[str] = ()
    port: int = field(default_factory=free_port)
    epmd_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    passwords: dict[str, str] = field(default_factory=dict)
    listen: tuple[str, ...] = ("127.0.0.1",)  # the addresses AMQP (and TLS) listen on
    tls: Tls | None = None

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
                    "write": rf"^{SERVICE}\.(submit|contact|file_chunk|submit_file)$",
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

    def config_text(self) -> str:
        """``rabbitmq.conf``: the listeners, the definitions to load at boot, TLS if given."""
        lines = [f"listeners.tcp.{n} = {address}:{self.port}" for n, address in enumerate(self.listen, 1)]
        if self.tls is not None:
            tls = self.tls
            lines += [f"listeners.ssl.{n} = {address}:{tls.port}" for n, address in enumerate(self.listen, 1)]
            lines += [
                f"ssl_options.cacertfile = {tls.cafile}",
                f"ssl_options.certfile = {tls.certfile}",
                f"ssl_options.keyfile = {tls.keyfile}",
                "ssl_options.verify = verify_none",
                "ssl_options.fail_if_no_peer_cert = false",
            ]
        lines += [
            "loopback_users = none",
            "definitions.import_backend = local_filesystem",
            f"definitions.local.path = {self.base / 'definitions.json'}",
            "log.console = false",
            "",
        ]
        return "\n".join(lines)

    def write(self) -> bool:
        """The broker's directory: config, definitions, no plugins (mode 0700: it holds
        hashes); whether any file changed."""
        for sub in ("mnesia", "log"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o700)
        files = {
            "enabled_plugins": "[].\n",
            "definitions.json": json.dumps(self.definitions(), indent=1, sort_keys=True) + "\n",
            "rabbitmq.conf": self.config_text(),
            "rabbitmq-env.conf": "# every setting is in the environment\n",
        }
        changed = False
        for name, text in files.items():
            path = self.base / name
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                path.chmod(0o600)
                changed = True
        return changed

    def env(self) -> dict[str, str]:
        b = str(self.base)
        return {
            "HOME": b,
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": self.node,
            # The AMQP listeners are rabbitmq.conf's; the distribution port is given, since
            # its default (the AMQP port + 20000) is no port at all above 45535.
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


SPEC_KEYS = frozenset({"dir", "port", "epmd_port", "dist_port", "listen", "departments", "passwords", "tls"})


def setup_from_spec(spec: Any) -> BrokerSetup:
    """The broker described by a provisioning spec (``tongban provision broker``)::

    {"dir": path, "port": 5672, "epmd_port": 4370, "dist_port": 25672,
     "listen": ["127.0.0.1", ...], "departments": ["330481GA", ...],
     "passwords": {"tongban-central": "…", "330481GA": "…"},
     "tls": null | {"port": 5671, "certfile": path, "keyfile": path, "cafile": path}}
    """
    if not isinstance(spec, dict) or set(spec) != SPEC_KEYS:
        raise ConfigError(ErrorCode.CONFIG, f"broker spec: the keys are {', '.join(sorted(SPEC_KEYS))}")
    departments = [str(code) for code in spec["departments"]]
    for code in departments:
        check_department_code(code)
    passwords = {str(user): str(pw) for user, pw in dict(spec["passwords"]).items()}
    missing = sorted({CENTRAL_USER, *departments} - set(passwords))
    if missing:
        raise ConfigError(ErrorCode.CONFIG, f"broker spec: no password for {', '.join(missing)}")
    tls = spec["tls"]
    return BrokerSetup(
        Path(str(spec["dir"])),
        departments,
        port=int(spec["port"]),
        epmd_port=int(spec["epmd_port"]),
        dist_port=int(spec["dist_port"]),
        passwords=passwords,
        listen=tuple(str(a) for a in spec["listen"]) or ("127.0.0.1",),
        tls=Tls(int(tls["port"]), tls["certfile"], tls["keyfile"], tls["cafile"]) if tls else None,
    )


def supervisor_programs(setup: BrokerSetup) -> str:
    """The supervisord programs of ``setup``'s epmd and broker (supervisord runs them as
    the account it runs as itself)."""
    env = ",".join(f'{key}="{value}"' for key, value in setup.env().items())
    log = setup.base / "log"
    blocks = []
    for name, command, priority in (
        ("epmd", " ".join(setup.epmd_command()), 10),
        ("rabbitmq", " ".join(setup.server_command()), 20),
    ):
        blocks.append(
            "\n".join(
                [
                    f"[program:{name}]",
                    f"command={command}",
                    f"environment={env}",
                    f"priority={priority}",
                    "autorestart=true",
                    "startsecs=5",
                    "stopsignal=TERM",
                    "stopwaitsecs=60",
                    # the server script and the Erlang VM it starts, both: a VM left behind
                    # keeps the ports, and the next start fails
                    "stopasgroup=true",
                    "killasgroup=true",
                    f"stdout_logfile={log}/{name}.out",
                    "redirect_stderr=true",
                ]
            )
        )
    head = "; written by 'tongban provision broker': central's RabbitMQ and its epmd"
    return "\n\n".join([head, *blocks, "[group:tongban-broker]\nprograms=epmd,rabbitmq"]) + "\n"
