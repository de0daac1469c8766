"""``tongban node init|request|enroll|show``, ``tongban node clerk …``, ``tongban node device …``
and ``tongban node serve``: a service-center node's commands (its sync and run commands are
:mod:`tongban.cli.sync`).

A node is set up in two steps: ``init`` makes its keys and an enrollment request carrying
the one-time token central issued for its code (``--token``, or later ``request --token``),
which is carried to central; ``enroll`` installs the bundle central wrote. A token given as
``-`` is read from the first line of stdin, so that it stays out of the process list.

Accounts made here are the same ``clerk.set`` records the admin page makes (actor
``sys:cli``); the password is read from the terminal (twice) or, for scripts, from stdin
with ``--password-stdin``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from core.clock import SystemClock
from core.intake import refuse_invisible
from node import config as node_config
from node import identity
from node.clerks import Clerks, hash_password
from node.desk import signing_keys
from node.holdings import Holdings
from node.store import NodeStore
from node.web.i18n import TEXT
from sync.projection.catalog import newest_expiry, newest_version
from sync.record.inspect import format_time
from sync.record.keys import NodeKeys, fingerprint, load_key_file
from sync.record.watermark import guard_of
from tongban.cli.refusals import refusals

CLOCK = SystemClock()
ROLE_CHOICES = click.Choice(["clerk", "approver", "admin", "auditor"])


@contextmanager
def _opened(directory: Path) -> Iterator[tuple[NodeKeys, Clerks]]:
    config = node_config.load(directory)
    with NodeStore.open(config.database_path, CLOCK) as store:
        node_keys = signing_keys(load_key_file(config.key_path), store, config.node.code, config.key_path)
        yield node_keys, Clerks(store.db, store.log, config.node.code, CLOCK)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("Password / 密码", hide_input=True, confirmation_prompt=True))


@click.command("init")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--tier", required=True, type=click.Choice(["city", "town", "village"]), help="The node's tier."
)
@click.option(
    "--code", required=True, help="Administrative-division code: 9 digits (city hall, town) or 12 (village)."
)
@click.option("--name", required=True, help="The center's name, e.g. 斜桥镇便民服务中心.")
@click.option("--parent-code", required=True, help="The code of the node above it (central's or the town's).")
@click.option("--token", help="The enrollment token central issued for the code ('-': read it from stdin).")
@refusals
def node_init(directory: Path, tier: str, code: str, name: str, parent_code: str, token: str | None) -> None:
    """Create a node directory with new keys and an enrollment request."""
    refuse_invisible("center name", name)  # before anything is written
    result = identity.init(
        directory, tier=tier, code=code, name=name, parent=parent_code, clock=CLOCK, token=_token(token)
    )
    click.echo(f"node {code} initialized in {directory}")
    click.echo(f"  signing key fingerprint: {result.sign_fingerprint}")
    click.echo(f"  enrollment request:      {result.request_path}")
    if token is None:
        click.echo("  next: get a token from central ('tongban central enroll-token CENTRAL_DIR CODE'),")
        click.echo(f"        then run 'tongban node request {directory} --token TOKEN'")
    click.echo("  then: carry the request to central and run 'tongban central enroll CENTRAL_DIR REQUEST'")


@click.command("request")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--token", required=True, help="The token central issued for the code ('-': from stdin).")
@refusals
def node_request(directory: Path, token: str) -> None:
    """Make the node's enrollment request again, carrying central's one-time token."""
    path = identity.request(directory, token=_token(token) or "", clock=CLOCK)
    click.echo(f"enrollment request with the token: {path}")
    click.echo("  next: carry it to central and run 'tongban central enroll CENTRAL_DIR REQUEST'")


def _token(given: str | None) -> str | None:
    """The token as given, or read from stdin's first line for ``-``."""
    return sys.stdin.readline().strip() if given == "-" else given


@click.command("enroll")
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


@click.command("show")
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
        catalog, expires = newest_version(store.db), newest_expiry(store.db)
        click.echo(f"{config.node.code} {config.node.name} ({config.node.tier}, parent {config.node.parent})")
        click.echo(f"  key:        {fingerprint(node_keys.sign_public)} (kid {node_keys.kid.hex()})")
        click.echo(f"  enrolled:   {'yes' if own else 'no'}; network {anchor.net if anchor else '-'}")
        click.echo(f"  own log:    {own.seq if own else 0} records")
        click.echo(
            f"  log:        {log.count()} records, {log.count('held')} held, {log.count('rejected')} rejected"
        )
        if catalog and expires is not None:
            click.echo(f"  catalog:    v{catalog}, expires {format_time(expires)}")
        guard = guard_of(signing_keys(node_keys, store, config.node.code, config.key_path))
        holdings = Holdings(store, config.node.code, config.node.tier, CLOCK, guard)
        for banner in holdings.chain_banners():
            zh, en = TEXT[banner.text_key]
            click.echo(f"  alarm:      {banner.code} {zh} / {en} ({banner.detail})")


@click.command("accept-loss")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Confirm that the records named are lost for good.")
@refusals
def node_accept_loss(directory: Path, yes: bool) -> None:
    """Give up records this node signed that no store holds any more, so that it signs again.

    For a store restored from an older copy that a sync could not make whole (what it signed
    after the copy reached no one). The risk: should one of those records surface later (a
    copy elsewhere), the node has signed its seq twice, and that is a fork.
    """
    config = node_config.load(directory)
    with NodeStore.open(config.database_path, CLOCK) as store:
        node_keys = signing_keys(load_key_file(config.key_path), store, config.node.code, config.key_path)
        guard = guard_of(node_keys)
        assert guard is not None
        signed, head = guard.watermark.read(), guard.head()
        if signed <= head:
            click.echo(f"nothing to give up: the store holds every record it signed (#{head})")
            return
        lost = f"#{head + 1}" + (f"..#{signed}" if signed > head + 1 else "")
        if not yes:
            raise click.UsageError(
                f"{config.node.code} signed {lost}, which its store and its parent do not hold; sync"
                " first, and if they are still lost, run again with --yes to give them up"
            )
        guard.watermark.lower_to(head)
    click.echo(f"given up {lost}: {config.node.code} signs on from #{head + 1}")
    click.echo("  should one of them surface later, it is a fork of this node's chain (docs/operations.md)")


@click.group("clerk")
def clerk() -> None:
    """Clerk accounts of a node (roles: clerk, approver, admin, auditor)."""


@clerk.command("add")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("user")
@click.option("--name", required=True, help="Display name, e.g. 王丽.")
@click.option("--role", "roles", multiple=True, type=ROLE_CHOICES, required=True, help="Repeat for several.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@refusals
def clerk_add(directory: Path, user: str, name: str, roles: tuple[str, ...], password_stdin: bool) -> None:
    """Create an account."""
    digest = hash_password(_password(password_stdin))
    with _opened(directory) as (node_keys, clerks):
        clerks.add(node_keys, user, name, list(roles), digest, actor="sys:cli")
    click.echo(f"added {user} ({', '.join(roles)})")


@clerk.command("disable")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("user")
@refusals
def clerk_disable(directory: Path, user: str) -> None:
    """Disable an account and end its sessions."""
    with _opened(directory) as (node_keys, clerks):
        clerks.set_active(node_keys, user, False, actor="sys:cli")
    click.echo(f"disabled {user}")


@clerk.command("passwd")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("user")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@refusals
def clerk_passwd(directory: Path, user: str, password_stdin: bool) -> None:
    """Set a new password (ends the account's sessions, clears the login backoff)."""
    digest = hash_password(_password(password_stdin))
    with _opened(directory) as (_, clerks):
        clerks.set_password(user, digest)
    click.echo(f"password of {user} changed")


@clerk.command("unlock")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("user")
@refusals
def clerk_unlock(directory: Path, user: str) -> None:
    """Lift the login backoff of an account, from every address (the password stays)."""
    with _opened(directory) as (_, clerks):
        sources = clerks.unlock(user)
    click.echo(f"unlocked {user} ({sources} address(es) had failed logins)")


@clerk.command("list")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def clerk_list(directory: Path) -> None:
    """List the accounts."""
    with _opened(directory) as (_, clerks):
        for c in clerks.all():
            state = "active" if c["active"] else "disabled"
            click.echo(f"{c['user']:<16} {c['name']:<10} {','.join(c['roles']):<28} {state}")  # type: ignore[arg-type]


@click.group("device")
def device() -> None:
    """Device tokens for self-service kiosks and scripts (/api/v1)."""


@device.command("add")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("name")
@click.option("--role", "roles", multiple=True, type=click.Choice(["clerk", "auditor"]), default=["clerk"])
@refusals
def device_add(directory: Path, name: str, roles: tuple[str, ...]) -> None:
    """Create a token; it is printed once and only its hash is kept."""
    with _opened(directory) as (_, clerks):
        token = clerks.add_device(name, list(roles))
    click.echo(token)


@device.command("disable")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("name")
@refusals
def device_disable(directory: Path, name: str) -> None:
    """Disable a device token."""
    with _opened(directory) as (_, clerks):
        clerks.disable_device(name)
    click.echo(f"disabled {name}")


@click.command("serve")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--listen", help="HOST:PORT (default: [web] listen in node.toml).")
def serve(directory: Path, listen: str | None) -> None:
    """Run the clerk web service (pages and /api/v1) in the foreground."""
    args = [sys.executable, "-m", "tongban.run", str(directory), "--only", "web"]
    if listen:
        args += ["--listen", listen]
    os.execv(sys.executable, args)
