"""``tongban node clerk …``, ``tongban node device …`` and ``tongban node serve``.

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
from node import config as node_config
from node.clerks import Clerks, hash_password
from node.store import NodeStore
from sync.record.keys import NodeKeys, load_key_file
from tongban.refusals import refusals

CLOCK = SystemClock()
ROLE_CHOICES = click.Choice(["clerk", "approver", "admin", "auditor"])


@contextmanager
def _opened(directory: Path) -> Iterator[tuple[NodeKeys, Clerks]]:
    config = node_config.load(directory)
    with NodeStore.open(config.database_path, CLOCK) as store:
        yield load_key_file(config.key_path), Clerks(store.db, store.log, config.node.code, CLOCK)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("Password / 密码", hide_input=True, confirmation_prompt=True))


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
