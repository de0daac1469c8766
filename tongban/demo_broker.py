"""The demo's department back office: a private RabbitMQ and 公安户政's desk and link.

When Debian's rabbitmq-server is installed (``scripts/system-deps.sh``), ``demo start``
runs, under the demo's supervisord: epmd and the broker (:mod:`tongban.rabbitmq`: its own
directory, every listener on 127.0.0.1 at the ports printed), central's department link
(``--only broker``), and each department's link and desk. Every store's ``[amqp] uri``
is written here, with a password made for this run. Without rabbitmq-server nothing of it
runs and the demo says so: the department's cases wait at central, on its dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from central.department import config as department_config
from tongban import rabbitmq
from tongban.demo_files import Program, set_section, tongban_program


@dataclass
class BackOffice:
    """What the demo runs for its departments: the programs, the desks' login pages, the
    lines it prints."""

    on: bool
    programs: list[Program] = field(default_factory=list)
    desks: dict[str, str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def department_homes(home: Path) -> list[Path]:
    return sorted(p for p in home.iterdir() if (p / department_config.CONFIG_FILE).is_file())


def prepare(
    home: Path, *, desk_port: int, broker_port: int, accounts: str, broker: bool | None = None
) -> BackOffice:
    """The broker and department programs of the demo in ``home``; ``accounts`` names the
    desks' demo accounts, for the lines printed. ``broker``: whether to run one (default:
    when rabbitmq-server is installed)."""
    homes = department_homes(home)
    if not homes:
        return BackOffice(False)
    if not (rabbitmq.installed() if broker is None else broker):
        line = "  department desk: off (rabbitmq-server is not installed; scripts/system-deps.sh installs it)"
        return BackOffice(False, lines=[line, "    its cases wait at central, on the dashboard"])
    codes = [department_config.load(p).code for p in homes]
    setup = rabbitmq.BrokerSetup(
        home.resolve() / "rabbitmq",
        codes,
        port=broker_port,
        epmd_port=broker_port + 1,
        dist_port=broker_port + 2,
    )
    setup.write()
    set_section(home / "central" / "central.toml", "amqp", {"uri": setup.uri(rabbitmq.CENTRAL_USER)})
    office = BackOffice(True, programs=_broker_programs(setup))
    office.programs.append(
        tongban_program(
            "central-broker", home.resolve() / "central", " --only broker", setup.base / "central.log"
        )
    )
    office.lines.append(
        f"  RabbitMQ: amqp://127.0.0.1:{setup.port}/ (epmd 127.0.0.1:{setup.epmd_port},"
        f" distribution 127.0.0.1:{setup.dist_port}), in {setup.base}"
    )
    for offset, (path, code) in enumerate(zip(homes, codes, strict=True)):
        set_section(path / department_config.CONFIG_FILE, "amqp", {"uri": setup.uri(code)})
        port = desk_port + offset
        path = path.resolve()
        web = f" --only web --listen 127.0.0.1:{port}"
        office.programs.append(tongban_program(f"desk-{code}", path, web, path / "desk.log"))
        office.programs.append(tongban_program(f"link-{code}", path, " --only broker", path / "link.log"))
        office.desks[code] = f"http://127.0.0.1:{port}/login"
        name = department_config.load(path).department.name
        office.lines.append(f"  {name} {code}: http://127.0.0.1:{port}/   accounts: {accounts}")
    return office


def _broker_programs(setup: rabbitmq.BrokerSetup) -> list[Program]:
    log = setup.base / "log"
    env = setup.env()
    # epmd first; the broker's script stops the broker on SIGTERM.
    return [
        Program("epmd", " ".join(setup.epmd_command()), log / "epmd.out", env, "TERM", priority=10),
        Program("rabbitmq", " ".join(setup.server_command()), log / "server.out", env, "TERM", priority=20),
    ]
