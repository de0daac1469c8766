"""``tongban central init|enroll-token|enroll|revoke-node|publish-catalog|publish-calendar|grant`` and
``tongban central admin …``: the city authority's acts and its operator accounts (its keys,
heartbeat and re-check are :mod:`tongban.cli.authority`, its ``run`` :mod:`tongban.cli.sync`).

Each act is one call into :mod:`central.authority` on central's opened directory.

Operator accounts are managed as ``tongban node clerk …`` manages a node's: accounts made
here are the same ``clerk.set`` records of central that the web service reads (actor
``sys:cli``); the password is read from the terminal (twice) or, for scripts, from stdin
with ``--password-stdin``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from central import authority, enroll_tokens
from central.admins import admins
from central.authority import Central, open_central
from central.catalog_files import load_catalog_file
from core.catalog import Mode
from core.clock import SystemClock
from core.intake import refuse_invisible
from core.roles import CENTRAL_ROLES
from sync.record.inspect import format_time
from tongban.cli.refusals import refusals
from web.accounts import Accounts, hash_password

CLOCK = SystemClock()
DIRECTORY = click.Path(exists=True, file_okay=False, path_type=Path)
ROLE_CHOICES = click.Choice(CENTRAL_ROLES)


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--code", required=True, help="The city's 6-digit administrative-division code, e.g. 330481.")
@click.option("--name", required=True, help="The city's name, e.g. 海宁市.")
@click.option("--net", help="Network name in records (default cn-CODE).")
@refusals
def central_init(directory: Path, code: str, name: str, net: str | None) -> None:
    """Create central's keys and the network's genesis record."""
    refuse_invisible("center name", name)  # before anything is written
    anchor = authority.init(directory, code=code, name=name, net=net, clock=CLOCK)
    click.echo(f"central {code} {name} initialized in {directory}")
    click.echo(f"  trust anchor fingerprint: {anchor}")
    click.echo("  give this fingerprint to node operators out of band; they check it at enrollment")


@click.command("enroll-token")
@click.argument("central_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("code")
@click.option(
    "--valid-hours",
    default=enroll_tokens.VALID_HOURS,
    show_default=True,
    type=click.IntRange(1, enroll_tokens.MAX_VALID_HOURS),
)
@refusals
def central_enroll_token(central_dir: Path, code: str, valid_hours: int) -> None:
    """Issue the one-time token a node's enrollment request for CODE must carry."""
    with authority.open_central(central_dir, CLOCK) as opened:
        token, expires = authority.issue_enroll_token(opened, code, valid_hours=valid_hours)
    click.echo(token)  # the first line alone: scripts read it from there
    click.echo(f"  enrolls {code} once, until {format_time(expires)}")
    click.echo("  shown only now: central keeps its digest, not the token")
    click.echo(f"  on the node: tongban node request NODE_DIR --token {token[:4]}…")


@click.command("enroll")
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


@click.command("revoke-node")
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


@click.command("publish-catalog")
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


@click.command("publish-calendar")
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


@click.command("grant")
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


# -- operator accounts --------------------------------------------------------------------


@contextmanager
def _opened(directory: Path) -> Iterator[tuple[Central, Accounts[Central]]]:
    with open_central(directory, CLOCK) as central:
        yield central, admins(central)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("Password / 密码", hide_input=True, confirmation_prompt=True))


def _password_option(fn: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
    )(fn)


@click.group("admin")
def admin() -> None:
    """Operator accounts of central (roles: catalog_admin, delegation_admin, auditor, viewer)."""


@admin.command("add")
@click.argument("directory", type=DIRECTORY)
@click.argument("user")
@click.option("--name", required=True, help="Display name, e.g. 施晓明.")
@click.option("--role", "roles", multiple=True, type=ROLE_CHOICES, required=True, help="Repeat for several.")
@_password_option
@refusals
def admin_add(directory: Path, user: str, name: str, roles: tuple[str, ...], password_stdin: bool) -> None:
    """Create an operator account."""
    digest = hash_password(_password(password_stdin))
    with _opened(directory) as (central, accounts):
        accounts.add(central, user, name, list(roles), digest, actor="sys:cli")
    click.echo(f"added {user} ({', '.join(roles)})")


@admin.command("disable")
@click.argument("directory", type=DIRECTORY)
@click.argument("user")
@refusals
def admin_disable(directory: Path, user: str) -> None:
    """Disable an operator account and end its sessions."""
    with _opened(directory) as (central, accounts):
        accounts.set_active(central, user, False, actor="sys:cli")
    click.echo(f"disabled {user}")


@admin.command("passwd")
@click.argument("directory", type=DIRECTORY)
@click.argument("user")
@_password_option
@refusals
def admin_passwd(directory: Path, user: str, password_stdin: bool) -> None:
    """Set a new password (ends the account's sessions, clears the login backoff)."""
    digest = hash_password(_password(password_stdin))
    with _opened(directory) as (_, accounts):
        accounts.set_password(user, digest)
    click.echo(f"password of {user} changed")


@admin.command("unlock")
@click.argument("directory", type=DIRECTORY)
@click.argument("user")
@refusals
def admin_unlock(directory: Path, user: str) -> None:
    """Lift the login backoff of an operator account, from every address (the password stays)."""
    with _opened(directory) as (_, accounts):
        sources = accounts.unlock(user)
    click.echo(f"unlocked {user} ({sources} address(es) had failed logins)")


@admin.command("list")
@click.argument("directory", type=DIRECTORY)
@refusals
def admin_list(directory: Path) -> None:
    """List the operator accounts."""
    with _opened(directory) as (_, accounts):
        for a in accounts.all():
            state = "active" if a["active"] else "disabled"
            click.echo(f"{a['user']:<16} {a['name']:<10} {','.join(a['roles']):<40} {state}")  # type: ignore[arg-type]
