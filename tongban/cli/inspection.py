"""``tongban verify`` and ``tongban log``: a node's, central's or a department's store, read offline.

``verify`` re-checks the whole log from its signed bytes (:func:`sync.record.inspect.verify_store`)
and exits 1 on a fault; ``log`` lists the records, or those the store refused.
"""

from __future__ import annotations

import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import click

from central import config as central_config
from central.department import config as department_config
from central.department.store import MIGRATION_SETS as DEPARTMENT_SETS
from central.store import MIGRATION_SETS as CENTRAL_SETS
from core.clock import SystemClock
from core.errors import ConfigError, ErrorCode
from node import config as node_config
from node.store import MIGRATION_SETS as NODE_SETS
from sync.projection import standard
from sync.projection.files import verify_files
from sync.record.db import open_database
from sync.record.inspect import format_time, list_records, verify_store
from sync.record.refused import rejections
from tongban.cli.refusals import refusals

CLOCK = SystemClock()


def _store_of(directory: Path) -> tuple[str, Path, Any]:
    if (directory / node_config.CONFIG_FILE).is_file():
        return "node", node_config.load(directory).database_path, NODE_SETS
    if (directory / central_config.CONFIG_FILE).is_file():
        return "central", central_config.load(directory).database_path, CENTRAL_SETS
    if (directory / department_config.CONFIG_FILE).is_file():
        return "department", department_config.load(directory).database_path, DEPARTMENT_SETS
    raise ConfigError(
        ErrorCode.NOT_INITIALIZED, f"{directory} has no node.toml, central.toml or department.toml"
    )


@click.command("verify")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@refusals
def verify(directory: Path) -> None:
    """Re-verify a node's or central's whole log offline."""
    what, path, sets = _store_of(directory)
    report = verify_store(path, sets, CLOCK, standard())
    verify_files(path, report)
    anchor = report.anchor.hex()[:16] if report.anchor else "none"
    click.echo(
        f"{what} {directory}: {report.records} records from {report.origins} origins; anchor {anchor}…"
    )
    for warning in report.warnings:
        click.echo(f"  warning: {warning}")
    for fault in report.faults:
        click.echo(f"  FAULT: {fault}")
    if report.ok:
        click.echo("  OK: every signature, chain link, certificate and projection checks out")
    else:
        click.echo(f"  {len(report.faults)} fault(s): {ErrorCode.VERIFY_FAILED.value}")
        sys.exit(1)


@click.command("log")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--kind", help="Only records of this kind.")
@click.option("--origin", help="Only records of this origin (node code).")
@click.option("--limit", type=click.IntRange(1), help="At most this many records.")
@click.option("--rejected", is_flag=True, help="List rejected records with their codes instead.")
@refusals
def log(directory: Path, kind: str | None, origin: str | None, limit: int | None, rejected: bool) -> None:
    """List the records of a node's or central's log in readable form."""
    _, path, sets = _store_of(directory)
    with closing(open_database(path, sets, create=False)) as db:
        if rejected:
            refused = rejections(db)
            for r in refused:
                who = f"{r.origin} #{r.seq} {r.kind}" if r.origin else "(unreadable)"
                click.echo(
                    f"{format_time(r.last_at)}  {r.code:<24} {who}  x{r.times} from {r.source}: {r.reason}"
                )
            click.echo(f"{len(refused)} rejected")
            return
        for line in list_records(db, kind=kind, origin=origin, limit=limit):
            actor = f" by {line.actor}" if line.actor else ""
            click.echo(
                f"{line.arrival:>6}  {format_time(line.ts)}  {line.origin} #{line.seq:<5} {line.kind:<16}"
                f" {line.record_id.hex()[:12]}{actor}  {line.summary}"
            )
