"""``tongban central admin …``: central's operator accounts, as ``tongban node clerk …``.

Accounts made here are the same ``clerk.set`` records of central that the web service
reads (actor ``sys:cli``); the password is read from the terminal (twice) or, for
scripts, from stdin with ``--password-stdin``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from central.admins import admins
from central.authority import Central, open_central
from core.clock import SystemClock
from core.roles import CENTRAL_ROLES
from tongban.refusals import refusals
from web.accounts import Accounts, hash_password

CLOCK = SystemClock()
DIRECTORY = click.Path(exists=True, file_okay=False, path_type=Path)
ROLE_CHOICES = click.Choice(CENTRAL_ROLES)


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


@admin.command("list")
@click.argument("directory", type=DIRECTORY)
@refusals
def admin_list(directory: Path) -> None:
    """List the operator accounts."""
    with _opened(directory) as (_, accounts):
        for a in accounts.all():
            state = "active" if a["active"] else "disabled"
            click.echo(f"{a['user']:<16} {a['name']:<10} {','.join(a['roles']):<40} {state}")  # type: ignore[arg-type]
