"""``tongban department init|enroll|show|clerk`` and ``tongban central enroll-department``: a
department back office's set-up and its desk accounts (its ``run`` is :mod:`tongban.cli.sync`).

A department is set up as a node is: ``init`` makes its keys and an enrollment request on
its own host; central certifies it for the items it decides (``central enroll-department``);
``enroll`` installs the bundle.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from central import authority
from central.department import config as department_config
from central.department import identity
from central.department.desk import DepartmentDesk
from central.department.store import DepartmentStore
from central.departments import enroll_department
from core.clock import SystemClock
from core.roles import DEPARTMENT_ROLES
from sync.projection.departments import departments
from sync.record.keys import fingerprint, load_key_file
from tongban.cli.refusals import refusals
from web.accounts import hash_password

CLOCK = SystemClock()
DIRECTORY = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--code", required=True, help="The city's code and the department's initials, e.g. 330481GA.")
@click.option("--name", required=True, help="The unit's name, e.g. 海宁市公安局户政管理.")
@click.option("--parent-code", required=True, help="Central's code (the city's 6 digits).")
@click.option("--amqp-uri", default="", help="The department's broker URI, amqp://USER:PASSWORD@HOST:PORT/.")
@refusals
def department_init(directory: Path, code: str, name: str, parent_code: str, amqp_uri: str) -> None:
    """Create a department directory with new keys and an enrollment request."""
    amqp = department_config.AmqpSection(uri=amqp_uri)
    result = identity.init(directory, code=code, name=name, parent=parent_code, clock=CLOCK, amqp=amqp)
    click.echo(f"department {code} initialized in {directory}")
    click.echo(f"  signing key fingerprint: {result.sign_fingerprint}")
    click.echo(f"  enrollment request:      {result.request_path}")
    click.echo(
        "  next: carry the request to central and run"
        " 'tongban central enroll-department CENTRAL_DIR REQUEST --department NAME --items A,B'"
    )


@click.command("enroll")
@click.argument("directory", type=DIRECTORY)
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--anchor", help="Central's anchor fingerprint, as printed by 'central init'.")
@refusals
def department_enroll(directory: Path, bundle: Path, anchor: str | None) -> None:
    """Install the bundle central wrote for this department."""
    cert_id = identity.enroll(directory, bundle.read_bytes(), clock=CLOCK, anchor_fingerprint=anchor)
    click.echo(f"department enrolled under certificate {cert_id.hex()[:16]}")
    if anchor is None:
        click.echo("  warning: the anchor was not checked against a fingerprint (--anchor)")


@click.command("show")
@click.argument("directory", type=DIRECTORY)
@refusals
def department_show(directory: Path) -> None:
    """Show a department's identity, key, certificate and the items it decides."""
    config = department_config.load(directory)
    own = load_key_file(config.key_path)
    click.echo(f"{config.code} {config.department.name} (department of {config.department.parent})")
    click.echo(f"  signing key {fingerprint(own.sign_public)}")
    click.echo(f"  broker {config.amqp.uri.split('@')[-1] if config.amqp.uri else '(none configured)'}")
    with DepartmentStore.open(config.database_path, CLOCK) as store:
        mine = [d for d in departments(store.db) if d.code == config.code]
        for d in mine:
            state = "revoked" if d.revoked else "live" if d.live(CLOCK.now()) else "expired"
            click.echo(
                f"  certificate {d.cert_id.hex()[:16]} ({state}) for {d.department}: {', '.join(d.items)}"
            )
        if not mine:
            click.echo("  not enrolled yet")
        counts = store.inbox_counts()
        click.echo(f"  {counts.records} records received from central, {store.log.count()} held")


@click.command("enroll-department")
@click.argument("central_dir", type=DIRECTORY)
@click.argument("request", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--department", required=True, help="The catalog's department of the items, e.g. 海宁市公安局.")
@click.option("--items", required=True, help="Comma-separated codes of the items it decides.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the bundle.")
@click.option(
    "--valid-days", default=authority.CERT_VALIDITY_DAYS, show_default=True, type=click.IntRange(1, 730)
)
@refusals
def central_enroll_department(
    central_dir: Path, request: Path, department: str, items: str, out: Path | None, valid_days: int
) -> None:
    """Certify a department for the items it decides and write its bundle."""
    codes = [code.strip() for code in items.split(",") if code.strip()]
    with authority.open_central(central_dir, CLOCK) as central:
        cert, bundle = enroll_department(
            central, request.read_bytes(), department=department, items=codes, valid_days=valid_days
        )
        target = out or central.config.bundle_dir / f"{cert.body['code']}.bundle"
        target.write_bytes(bundle)
    click.echo(
        f"certified {cert.body['code']} {cert.body['name']} for {len(codes)} item(s) as record #{cert.seq}"
    )
    click.echo(f"  bundle: {target}")


@click.group("clerk")
def clerk() -> None:
    """Accounts of the department desk (roles: approver, admin, auditor)."""


@clerk.command("add")
@click.argument("directory", type=DIRECTORY)
@click.argument("user")
@click.option("--name", required=True, help="Display name, e.g. 胡政.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(DEPARTMENT_ROLES),
    required=True,
    help="Repeat for several.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@refusals
def clerk_add(directory: Path, user: str, name: str, roles: tuple[str, ...], password_stdin: bool) -> None:
    """Create a desk account (a clerk.set record of the department, sent on to central)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = str(click.prompt("Password / 密码", hide_input=True, confirmation_prompt=True))
    digest = hash_password(password)
    with DepartmentDesk.open(directory, CLOCK) as desk:
        desk.accounts.add(desk.keys, user, name, list(roles), digest, actor="sys:cli")
    click.echo(f"added {user} ({', '.join(roles)})")


@clerk.command("list")
@click.argument("directory", type=DIRECTORY)
@refusals
def clerk_list(directory: Path) -> None:
    """List the desk accounts."""
    with DepartmentDesk.open(directory, CLOCK) as desk:
        for a in desk.accounts.all():
            state = "active" if a["active"] else "disabled"
            click.echo(f"{a['user']:<16} {a['name']:<10} {','.join(a['roles']):<30} {state}")  # type: ignore[arg-type]
