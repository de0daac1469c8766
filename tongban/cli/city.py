"""``tongban city status``: every node of the city in one table, read at central.

The rows are :func:`central.city_status.city_status`'s, read in central's directory, or,
given the city's org-tree file on the controller, by ``ansible/city-status.yml`` running
the same command at central. The command exits 1 when any node
needs attention (a fork, a stale or silent node, a certificate near or past its expiry,
a large backlog, refused records, a catalog behind the newest), so a cron job or a
monitoring check can run it; ``--json`` prints the rows for scripts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import click

from central.authority import open_central
from central.city_status import STALE_SECONDS, NodeStatus, city_status
from core.clock import SystemClock
from core.errors import ConfigError, ErrorCode
from provisioning import inventory
from tongban.cli.provision import load_tree
from tongban.cli.refusals import refusals

CLOCK = SystemClock()
STATUS_PLAYBOOK = Path("ansible/city-status.yml")
COLUMNS = (
    "code",
    "name",
    "tier",
    "version",
    "protocol",
    "last contact",
    "backlog",
    "rejected",
    "forks",
    "cert expires",
    "catalog",
)


@click.group("city")
def city() -> None:
    """The whole city at once, read at central."""


@city.command("status")
@click.argument("directory", type=click.Path(exists=True, path_type=Path), default=".")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option(
    "--playbook",
    type=click.Path(dir_okay=False, path_type=Path),
    default=STATUS_PLAYBOOK,
    show_default=True,
    help="With an org-tree file: the playbook that runs the command at central.",
)
@click.option(
    "--stale-minutes",
    type=click.IntRange(min=1),
    default=STALE_SECONDS // 60,
    show_default=True,
    help="A node central has not heard of for longer needs attention.",
)
@refusals
def status_command(directory: Path, as_json: bool, playbook: Path, stale_minutes: int) -> None:
    """Every node of the city central (DIRECTORY, default .) knows; exit 1 if any needs attention.

    DIRECTORY may be the city's org-tree file instead, on the controller: the command then
    runs at central through Ansible (the playbook ``ansible/city-status.yml``).
    """
    if directory.is_file():
        now, rows = from_controller(directory, playbook, stale_minutes)
    else:
        with open_central(directory, CLOCK) as central:
            now = CLOCK.now()
            rows = city_status(central.store.db, now, stale_after=stale_minutes * 60)
    if as_json:
        click.echo(
            json.dumps({"now": now, "nodes": [r.as_json() for r in rows]}, ensure_ascii=False, indent=1)
        )
    else:
        click.echo(table(rows, now))
    sys.exit(1 if any(r.attention for r in rows) else 0)


def from_controller(tree: Path, playbook: Path, stale_minutes: int) -> tuple[int, list[NodeStatus]]:
    """Run the command at central for the org tree ``tree``; its time and rows."""
    if not playbook.is_file():
        raise ConfigError(ErrorCode.CONFIG, f"no playbook at {playbook} (run from the checkout or pass it)")
    beside = Path(sys.executable).parent / "ansible-playbook"
    program = str(beside) if beside.exists() else shutil.which("ansible-playbook")
    if program is None:
        raise ConfigError(ErrorCode.CONFIG, "ansible-playbook is not installed (pip install ansible-core)")
    with tempfile.TemporaryDirectory(prefix="tongban-status-") as work:
        inventory_file, out = Path(work) / "inventory.yml", Path(work) / "status.json"
        inventory_file.write_text(inventory.render(load_tree(tree)), encoding="utf-8")
        ran = subprocess.run(
            [
                program,
                *("-i", str(inventory_file), str(playbook)),
                *(
                    "-e",
                    f"tongban_city_status_out={out}",
                    "-e",
                    f"tongban_city_stale_minutes={stale_minutes}",
                ),
            ],
            capture_output=True,
            text=True,
        )
        if ran.returncode != 0 or not out.is_file():
            raise ConfigError(ErrorCode.CONFIG, f"{playbook} failed at central:\n{ran.stdout[-3000:]}")
        data = json.loads(out.read_text(encoding="utf-8"))
    return int(data["now"]), [NodeStatus(**row) for row in data["nodes"]]


def table(rows: list[NodeStatus], now: int) -> str:
    cells = [COLUMNS, *(_cells(r, now) for r in rows)]
    widths = [max(display_width(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(c[i] + " " * (widths[i] - display_width(c[i])) for i in range(len(COLUMNS))).rstrip()
        for c in cells
    ]
    for row in rows:
        if row.attention:
            lines.append(f"! {row.code} {row.name}: {'; '.join(row.attention)}")
    if not any(r.attention for r in rows):
        lines.append(f"all {len(rows)} nodes fine")
    return "\n".join(lines)


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cells(row: NodeStatus, now: int) -> tuple[str, ...]:
    def number(value: int | None) -> str:
        return "-" if value is None else str(value)

    contact = "never" if row.last_contact is None else f"{(now - row.last_contact) // 60} min ago"
    expires = "revoked" if row.revoked else "-" if row.cert_expires is None else _date(row.cert_expires)
    return (
        ("  " if row.tier == "village" else "") + row.code,
        row.name or "-",
        row.tier,
        row.version or "-",
        number(row.protocol),
        contact,
        number(row.backlog),
        number(row.rejected),
        str(row.forks),
        expires,
        number(row.catalog),
    )


def _date(ts: int) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(ts))
