"""The ``tongban`` command line: node and central administration, inspection, the demo.

This is the composition root: the only place that joins ``node``, ``central`` and
``sync``. Every command is documented in docs/cli.md (a test checks that).

Exit status: 0 success; 1 verification found faults; 2 usage error; 3 a refusal with a
stable error code, printed as ``E_CODE: 中文 / English (detail)``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from central import authority
from central import config as central_config
from central.catalog_files import load_catalog_file
from central.store import MIGRATION_SETS as CENTRAL_SETS
from core.catalog import Mode
from core.clock import SystemClock
from core.errors import ErrorCode, InputError
from node import config as node_config
from node import identity
from node.store import MIGRATION_SETS as NODE_SETS
from node.store import NodeStore
from sync.projection import standard
from sync.record.db import open_database
from sync.record.inspect import format_time, list_records, verify_store
from sync.record.keys import fingerprint, load_key_file
from tongban import __version__
from tongban.refusals import refusals

F = TypeVar("F", bound=Callable[..., Any])
CLOCK = SystemClock()


@click.group()
@click.version_option(__version__, prog_name="tongban")
def main() -> None:
    """Tongban (通办): offline-first service-center nodes that sync signed records."""


# -- node -------------------------------------------------------------------------------


@main.group()
def node() -> None:
    """Set up and inspect a service-center node (city hall, town or village)."""


@node.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--tier", required=True, type=click.Choice(["city", "town", "village"]), help="The node's tier."
)
@click.option(
    "--code", required=True, help="Administrative-division code: 9 digits (city hall, town) or 12 (village)."
)
@click.option("--name", required=True, help="The center's name, e.g. 斜桥镇便民服务中心.")
@click.option("--parent-code", required=True, help="The code of the node above it (central's or the town's).")
@refusals
def node_init(directory: Path, tier: str, code: str, name: str, parent_code: str) -> None:
    """Create a node directory with new keys and an enrollment request."""
    result = identity.init(directory, tier=tier, code=code, name=name, parent=parent_code, clock=CLOCK)
    click.echo(f"node {code} initialized in {directory}")
    click.echo(f"  signing key fingerprint: {result.sign_fingerprint}")
    click.echo(f"  enrollment request:      {result.request_path}")
    click.echo("  next: carry the request to central and run 'tongban central enroll CENTRAL_DIR REQUEST'")


@node.command("enroll")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--anchor", "anchor", help="Central's anchor fingerprint, as printed by 'central init'.")
@refusals
def node_enroll(directory: Path, bundle: Path, anchor: str | None) -> None:
    """Install the bundle central wrote for this node."""
    result = identity.enroll(directory, bundle.read_bytes(), clock=CLOCK, anchor_fingerprint=anchor)
    click.echo(f"node {result.code} enrolled; {result.records} records in its log")
    click.echo(f"  trust anchor: {result.anchor_fingerprint}")
    if anchor is None:
        click.echo("  compare this fingerprint with the one central's operator gave you")


@node.command("show")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@refusals
def node_show(directory: Path) -> None:
    """Show a node's identity, enrollment and log counts."""
    config = node_config.load(directory)
    node_keys = load_key_file(config.key_path)
    with NodeStore.open(config.database_path, CLOCK) as store:
        log = store.log
        own = log.head(config.node.code)
        anchor = log.anchor()
        releases = store.db.conn.execute(
            "SELECT max(version), max(expires_at) FROM catalog_releases"
        ).fetchone()
        click.echo(f"{config.node.code} {config.node.name} ({config.node.tier}, parent {config.node.parent})")
        click.echo(f"  key:        {fingerprint(node_keys.sign_public)} (kid {node_keys.kid.hex()})")
        click.echo(f"  enrolled:   {'yes' if own else 'no'}; network {anchor.net if anchor else '-'}")
        click.echo(f"  own log:    {own.seq if own else 0} records")
        click.echo(
            f"  log:        {log.count()} records, {log.count('held')} held, {log.count('rejected')} rejected"
        )
        if releases[0]:
            click.echo(f"  catalog:    v{releases[0]}, expires {format_time(releases[1])}")


# -- central ----------------------------------------------------------------------------


@main.group()
def central() -> None:
    """Run the city authority: trust anchor, certificates, catalog."""


@central.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--code", required=True, help="The city's 6-digit administrative-division code, e.g. 330481.")
@click.option("--name", required=True, help="The city's name, e.g. 海宁市.")
@click.option("--net", help="Network name in records (default cn-CODE).")
@refusals
def central_init(directory: Path, code: str, name: str, net: str | None) -> None:
    """Create central's keys and the network's genesis record."""
    anchor = authority.init(directory, code=code, name=name, net=net, clock=CLOCK)
    click.echo(f"central {code} {name} initialized in {directory}")
    click.echo(f"  trust anchor fingerprint: {anchor}")
    click.echo("  give this fingerprint to node operators out of band; they check it at enrollment")


@central.command("enroll")
@click.argument("central_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("request", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the bundle.")
@click.option(
    "--valid-days", default=authority.CERT_VALIDITY_DAYS, show_default=True, type=click.IntRange(1, 730)
)
@refusals
def central_enroll(central_dir: Path, request: Path, out: Path | None, valid_days: int) -> None:
    """Check an enrollment request, certify the node and write its bundle."""
    with authority.open_central(central_dir, CLOCK) as opened:
        cert, bundle = authority.enroll(opened, request.read_bytes(), valid_days=valid_days)
        target = out or opened.config.bundle_dir / f"{cert.body['node']}.bundle"
        target.write_bytes(bundle)
    click.echo(
        f"certified {cert.body['node']} {cert.body['name']} ({cert.body['tier']}) as record #{cert.seq}"
    )
    click.echo(f"  bundle: {target}")


@central.command("revoke-node")
@click.argument("central_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("code")
@click.option("--reason", required=True, help="Why, for the audit trail (e.g. 'machine stolen').")
@click.option(
    "--last-good-seq", type=int, help="Last sequence number still trusted (default: the last one held)."
)
@refusals
def central_revoke(central_dir: Path, code: str, reason: str, last_good_seq: int | None) -> None:
    """Revoke a node's certificate; its records after the cut-off are refused everywhere."""
    with authority.open_central(central_dir, CLOCK) as opened:
        records = authority.revoke_node(opened, code, reason=reason, last_good_seq=last_good_seq)
    for record in records:
        click.echo(
            f"revoked {code}: records after #{record.body['last_good_seq']} are refused"
            f" (record #{record.seq})"
        )


@central.command("publish-catalog")
@click.argument("central_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("catalog_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--valid-days", default=authority.CATALOG_VALIDITY_DAYS, show_default=True, type=click.IntRange(1, 400)
)
@refusals
def central_publish(central_dir: Path, catalog_file: Path, valid_days: int) -> None:
    """Publish the items of a YAML or CSV file as the next catalog release."""
    items = load_catalog_file(catalog_file)
    with authority.open_central(central_dir, CLOCK) as opened:
        record, release = authority.publish_catalog(opened, items, valid_days=valid_days)
    click.echo(f"published catalog v{release.version} with {len(release.items)} items (record #{record.seq})")


@central.command("publish-calendar")
@click.argument("central_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("schedule_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@refusals
def central_publish_calendar(central_dir: Path, schedule_file: Path) -> None:
    """Publish a year's holidays and adjusted working days (调休) from a YAML file."""
    with authority.open_central(central_dir, CLOCK) as opened:
        record, release = authority.publish_calendar(opened, schedule_file, actor="sys:calendar")
    s = release.schedule
    click.echo(
        f"published calendar v{release.version} for {s.year}: {len(s.holidays)} holidays,"
        f" {len(s.workdays)} adjusted working days (record #{record.seq})"
    )
    click.echo(f"  source: {s.source}")


@central.command("grant")
@click.argument("central_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("code")
@click.option(
    "--items", help="Comma-separated item codes (default: every item the catalog offers at the tier)."
)
@click.option(
    "--mode",
    type=click.Choice(["proxy", "direct", "same_power"]),
    help="Grant one mode (default: one grant per mode the catalog allows at the tier).",
)
@click.option("--valid-days", default=authority.GRANT_VALIDITY_DAYS, show_default=True, type=int)
@click.option("--depth", default=1, show_default=True, type=int, help="How far the grantee may pass it down.")
@refusals
def central_grant(
    central_dir: Path, code: str, items: str | None, mode: str | None, valid_days: int, depth: int
) -> None:
    """Grant items to a town or the city hall (a root grant)."""
    with authority.open_central(central_dir, CLOCK) as central_obj:
        records = authority.grant_items(
            central_obj,
            code,
            items.split(",") if items else None,
            Mode(mode) if mode else None,
            valid_days=valid_days,
            depth=depth,
        )
    for record, grant_mode, count in records:
        click.echo(f"granted {count} item(s) to {code} as {grant_mode.value}: {record.id.hex()[:16]}")


# -- inspection --------------------------------------------------------------------------


def _store_of(directory: Path) -> tuple[str, Path, Any]:
    if (directory / node_config.CONFIG_FILE).is_file():
        return "node", node_config.load(directory).database_path, NODE_SETS
    if (directory / central_config.CONFIG_FILE).is_file():
        return "central", central_config.load(directory).database_path, CENTRAL_SETS
    raise InputError(ErrorCode.NOT_INITIALIZED, f"{directory} has neither node.toml nor central.toml")


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@refusals
def verify(directory: Path) -> None:
    """Re-verify a node's or central's whole log offline."""
    what, path, sets = _store_of(directory)
    report = verify_store(path, sets, CLOCK, standard())
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


@main.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--kind", help="Only records of this kind.")
@click.option("--origin", help="Only records of this origin (node code).")
@click.option("--limit", type=click.IntRange(1), help="At most this many records.")
@click.option("--rejected", is_flag=True, help="List rejected records with their codes instead.")
@refusals
def log(directory: Path, kind: str | None, origin: str | None, limit: int | None, rejected: bool) -> None:
    """List the records of a node's or central's log in readable form."""
    _, path, sets = _store_of(directory)
    db = open_database(path, sets, create=False)
    try:
        if rejected:
            rows = db.conn.execute(
                "SELECT last_at, code, reason, origin, seq, kind, times, source FROM rejected ORDER BY n"
            ).fetchall()
            for last_at, code, reason, r_origin, seq, r_kind, times, source in rows:
                who = f"{r_origin} #{seq} {r_kind}" if r_origin else "(unreadable)"
                click.echo(f"{format_time(last_at)}  {code:<24} {who}  x{times} from {source}: {reason}")
            click.echo(f"{len(rows)} rejected")
            return
        for line in list_records(db, kind=kind, origin=origin, limit=limit):
            actor = f" by {line.actor}" if line.actor else ""
            click.echo(
                f"{line.arrival:>6}  {format_time(line.ts)}  {line.origin} #{line.seq:<5} {line.kind:<16}"
                f" {line.record_id.hex()[:12]}{actor}  {line.summary}"
            )
    finally:
        db.close()


@main.group()
def demo() -> None:
    """A small demo network on this machine."""


@demo.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@refusals
def demo_init(directory: Path) -> None:
    """Create central, one town and two villages, enrolled, with the demo catalog."""
    from tongban.demo import build_demo

    build_demo(directory, CLOCK, echo=click.echo)


@demo.command("start")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--port", default=8401, show_default=True, help="Port of the first node; the others follow.")
@click.option(
    "--sync-port", type=int, help="Port of central's sync endpoint, the town's next (default PORT+100)."
)
@refusals
def demo_start(directory: Path, port: int, sync_port: int | None) -> None:
    """Run every demo node (web and sync) and central's sync endpoint under supervisord."""
    from tongban import demo_run

    nodes = []
    for offset, home in enumerate(sorted(p for p in directory.iterdir() if (p / "node.toml").is_file())):
        config = node_config.load(home)
        nodes.append((config.node.code, config.node.name, port + offset))
    demo_run.start(directory, nodes, sync_port or port + 100, echo=click.echo)


@demo.command("stop")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def demo_stop(directory: Path) -> None:
    """Stop the demo's supervisord and every node it runs."""
    from tongban import demo_run

    if directory.exists() and demo_run.stop(directory):
        click.echo("demo stopped")
    else:
        click.echo("the demo was not running")


from tongban import node_cli  # noqa: E402  (subcommands that live in their own module)

node.add_command(node_cli.clerk)
node.add_command(node_cli.device)
node.add_command(node_cli.serve)

from tongban import central_cli  # noqa: E402  (central's operator accounts, in their own module)

central.add_command(central_cli.admin)


if __name__ == "__main__":  # pragma: no cover
    main()


from tongban import sync_cli  # noqa: E402 — commands of their own module, registered here

node.add_command(sync_cli.sync_command)
node.add_command(sync_cli.node_run)
central.add_command(sync_cli.central_run)
main.add_command(sync_cli.serve_command)

from tongban import authority_cli  # noqa: E402 — commands of their own module, registered here

central.add_command(authority_cli.keys_command)
central.add_command(authority_cli.rotate_key_command)
central.add_command(authority_cli.rotate_root_command)
central.add_command(authority_cli.heartbeat_command)
central.add_command(authority_cli.recheck_command)

from tongban import provision_cli  # noqa: E402 — commands of their own module, registered here

main.add_command(provision_cli.provision)
