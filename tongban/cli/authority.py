"""``tongban central keys|rotate-key|rotate-root|heartbeat|recheck``: central's keys, heartbeat, re-check.

Keys are named and rotated by records (:mod:`central.keyring`); the heartbeat is
:mod:`central.heartbeat`, the re-check of intakes :mod:`central.recheck`. ``tongban central
run`` does the last two on a timer; these commands do them now.
"""

from __future__ import annotations

from pathlib import Path

import click

from central import authority, heartbeat, recheck
from core.clock import SystemClock
from sync.projection.heartbeat import latest_heartbeat
from sync.record.inspect import format_time
from sync.record.keys import fingerprint
from sync.record.trust import DELEGATED_ROLES, ROLE_KINDS, all_keys
from tongban.cli.refusals import refusals

CLOCK = SystemClock()
CENTRAL_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command("keys")
@click.argument("central_dir", type=CENTRAL_DIR)
@refusals
def keys_command(central_dir: Path) -> None:
    """List central's signing keys by role: current and retired, and the newest heartbeat."""
    with authority.open_central(central_dir, CLOCK) as opened:
        rows = all_keys(opened.store.db)
        latest = latest_heartbeat(opened.store.db)
    for key in rows:
        state = "current" if key.until_seq is None else f"retired after #{key.until_seq}"
        kinds_signed = ", ".join(sorted(ROLE_KINDS[key.role]))
        named = f"named at #{key.since_seq}"
        click.echo(f"{key.role:<10} {fingerprint(key.sign_pk)}  {named:<16} {state:<22} {kinds_signed}")
    if latest is None:
        click.echo("heartbeat: none signed yet")
    else:
        valid = format_time(latest.exp)
        click.echo(f"heartbeat: #{latest.seq} at {format_time(latest.time)}, valid to {valid}")


@click.command("rotate-key")
@click.argument("central_dir", type=CENTRAL_DIR)
@click.argument("role", type=click.Choice(DELEGATED_ROLES))
@refusals
def rotate_key_command(central_dir: Path, role: str) -> None:
    """Replace a role's key; the old key signs nothing after this (nodes learn it at sync)."""
    with authority.open_central(central_dir, CLOCK) as opened:
        record = authority.rotate_key(opened, role)
    click.echo(f"{role} key replaced by {fingerprint(record.body['sign_pk'])} (record #{record.seq})")


@click.command("rotate-root")
@click.argument("central_dir", type=CENTRAL_DIR)
@refusals
def rotate_root_command(central_dir: Path) -> None:
    """Hand the root over to a new key, signed by the old root and proven by the new one."""
    with authority.open_central(central_dir, CLOCK) as opened:
        record = authority.rotate_root_key(opened)
    click.echo(f"root handed over to {fingerprint(record.body['sign_pk'])} (record #{record.seq})")
    click.echo("  nodes follow at their next sync; the old root signs nothing from now on")


@click.command("heartbeat")
@click.argument("central_dir", type=CENTRAL_DIR)
@click.option(
    "--valid-hours", default=heartbeat.VALIDITY // 3600, show_default=True, type=click.IntRange(1, 24 * 30)
)
@refusals
def heartbeat_command(central_dir: Path, valid_hours: int) -> None:
    """Sign a heartbeat now (``tongban central run`` signs one every 15 minutes)."""
    with authority.open_central(central_dir, CLOCK) as opened:
        record = heartbeat.publish(opened, validity=valid_hours * 3600)
    heads = ", ".join(f"{k} {v}" for k, v in sorted(record.body["heads"].items()))
    click.echo(f"heartbeat #{record.seq} valid to {format_time(record.body['exp'])}: {heads}")


@click.command("recheck")
@click.argument("central_dir", type=CENTRAL_DIR)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1), help="Flagged cases to list.")
@refusals
def recheck_command(central_dir: Path, limit: int) -> None:
    """Re-check every intake against the delegation chain as of its intake time; list the flagged."""
    with authority.open_central(central_dir, CLOCK) as opened:
        offline = opened.config.recheck.max_offline_days
        checked = recheck.recheck(opened.store, opened.code, max_offline_days=offline)
        totals = recheck.counts(opened.store)
        flagged = recheck.flagged(opened.store, limit)
    summary = ", ".join(f"{verdict} {n}" for verdict, n in sorted(totals.items()))
    click.echo(f"checked {checked} intake(s) now; all: {summary}")
    for f in flagged:
        when = format_time(f.received)
        click.echo(f"  {f.case_no}  {f.item:<8} {when}  {f.verdict:<8} {f.code}  {f.detail}")
