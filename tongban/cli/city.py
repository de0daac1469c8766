"""``tongban city status``: every node of the city in one table, read at central.

The rows are :func:`central.city_status.city_status`'s. The command exits 1 when any node
needs attention (a fork, a stale or silent node, a certificate near or past its expiry,
a large backlog, refused records, a catalog behind the newest), so a cron job or a
monitoring check can run it; ``--json`` prints the rows for scripts.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from central.authority import open_central
from central.city_status import STALE_SECONDS, NodeStatus, city_status
from core.clock import SystemClock
from tongban.cli.refusals import refusals

CLOCK = SystemClock()
COLUMNS = (
    "code",
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
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path), default=".")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option(
    "--stale-minutes",
    type=click.IntRange(min=1),
    default=STALE_SECONDS // 60,
    show_default=True,
    help="A node central has not heard of for longer needs attention.",
)
@refusals
def status_command(directory: Path, as_json: bool, stale_minutes: int) -> None:
    """Every node of the city central (DIRECTORY, default .) knows; exit 1 if any needs attention."""
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


def table(rows: list[NodeStatus], now: int) -> str:
    cells = [COLUMNS, *(_cells(r, now) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(COLUMNS))).rstrip() for c in cells]
    for row in rows:
        if row.attention:
            lines.append(f"! {row.code} {row.name}: {'; '.join(row.attention)}")
    if not any(r.attention for r in rows):
        lines.append(f"all {len(rows)} nodes fine")
    return "\n".join(lines)


def _cells(row: NodeStatus, now: int) -> tuple[str, ...]:
    def number(value: int | None) -> str:
        return "-" if value is None else str(value)

    contact = "never" if row.last_contact is None else f"{(now - row.last_contact) // 60} min ago"
    expires = "revoked" if row.revoked else "-" if row.cert_expires is None else _date(row.cert_expires)
    return (
        ("  " if row.tier == "village" else "") + row.code,
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
