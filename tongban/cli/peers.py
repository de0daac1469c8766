"""``tongban central fingerprint`` and ``tongban central peer propose|confirm|renew|revoke|list``:
this city's agreements with other cities (:mod:`central.peers`, docs/federation.md).

``propose`` keeps what the operator entered and prints the peer root's fingerprint;
``confirm`` signs the first cross-certification only when that fingerprint is typed back,
as the peer's operator read it out (``tongban central fingerprint`` on their side).
"""

from __future__ import annotations

from pathlib import Path

import click

from central import peer_items, peers
from central.authority import open_central
from core.clock import SystemClock
from core.errors import ErrorCode, InputError
from core.federation import MODES, ROLES, Scope
from sync.projection.peer_items import newest_mirror
from sync.record.inspect import format_time
from sync.record.keys import fingerprint
from tongban.cli.refusals import refusals

CLOCK = SystemClock()
CENTRAL_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


def _curve_pk(text: str) -> bytes:
    try:
        value = bytes.fromhex(text.strip())
    except ValueError as exc:
        raise InputError(ErrorCode.FIELD_INVALID, "the CURVE key is 64 hex digits") from exc
    if len(value) != 32:
        raise InputError(ErrorCode.FIELD_INVALID, "the CURVE key is 64 hex digits")
    return value


def _scope(items: tuple[str, ...], modes: tuple[str, ...], roles: tuple[str, ...]) -> Scope:
    return peers.scope_of(peers.items_of(items), modes, roles)


ITEM = click.option(
    "--item", "items", multiple=True, help="An item of the peer's catalog, CODE:VERSION (repeat)."
)
MODE = click.option("--mode", "modes", multiple=True, type=click.Choice(MODES), help="A mode given (repeat).")
ROLE = click.option("--role", "roles", multiple=True, type=click.Choice(ROLES), help="A role given (repeat).")
DAYS = click.option(
    "--valid-days", default=peers.VALID_DAYS, show_default=True, type=click.IntRange(1, peers.VALID_DAYS)
)


@click.command("fingerprint")
@click.argument("central_dir", type=CENTRAL_DIR)
@refusals
def fingerprint_command(central_dir: Path) -> None:
    """This city's net, name and root key with its fingerprint, to read out to a peer city,
    and where the peer's central links to this one (its CURVE key and ``[peers] listen``)."""
    with open_central(central_dir, CLOCK) as central:
        root = peers.own_root(central)
        curve = peers.own_curve_key(central)
        section = central.config.central
        listen = central.config.peers.listen
    click.echo(f"net: {section.net}")
    click.echo(f"name: {section.name}")
    click.echo(f"root key: {root.hex()}")
    click.echo(f"fingerprint: {fingerprint(root)}")
    click.echo(f"curve key: {curve.hex()}")
    click.echo(f"peer endpoint: {listen or '(none: [peers] listen is not set)'}")


@click.command("propose")
@click.argument("central_dir", type=CENTRAL_DIR)
@click.option("--net", "peer", required=True, help="The peer city's network, e.g. cn-310118.")
@click.option("--name", required=True, help="The peer city's name, e.g. 上海市青浦区.")
@click.option("--root-pk", required=True, help="The peer's root key, 64 hex digits.")
@click.option("--endpoint", default="", help="The peer central's link endpoint, tcp://HOST:PORT.")
@click.option("--curve-pk", default="", help="The peer central's CURVE key, 64 hex digits.")
@ITEM
@MODE
@ROLE
@DAYS
@refusals
def propose_command(
    central_dir: Path,
    peer: str,
    name: str,
    root_pk: str,
    endpoint: str,
    curve_pk: str,
    items: tuple[str, ...],
    modes: tuple[str, ...],
    roles: tuple[str, ...],
    valid_days: int,
) -> None:
    """Propose an agreement with another city; prints the fingerprint to compare. With
    ``--endpoint`` and ``--curve-pk`` (from the peer's ``tongban central fingerprint``) the
    two centrals link once both sides confirm; without them the peer is agreed, not linked."""
    if bool(endpoint) != bool(curve_pk):
        raise InputError(ErrorCode.FIELD_INVALID, "give --endpoint and --curve-pk together, or neither")
    link = (endpoint, _curve_pk(curve_pk)) if endpoint else None
    with open_central(central_dir, CLOCK) as central:
        root, scope = peers.root_key_of(root_pk), _scope(items, modes, roles)
        proposal = peers.propose(
            central, peer=peer, name=name, root_pk=root, scope=scope, valid_days=valid_days, link=link
        )
    click.echo(f"proposed: {proposal.peer} {proposal.name}, {len(proposal.scope.items)} item(s)")
    if link is not None:
        click.echo(f"  linked at {link[0]} once confirmed")
    click.echo(f"  peer root fingerprint: {fingerprint(proposal.root_pk)}")
    click.echo("  compare it with the peer's operator (tongban central fingerprint), then run confirm")


@click.command("confirm")
@click.argument("central_dir", type=CENTRAL_DIR)
@click.option("--net", "peer", required=True, help="The peer city's network.")
@click.option("--fingerprint", "typed", prompt="fingerprint the peer's operator read out", help="Typed back.")
@refusals
def confirm_command(central_dir: Path, peer: str, typed: str) -> None:
    """Confirm a proposal: the fingerprint typed back must be the peer root's."""
    with open_central(central_dir, CLOCK) as central:
        record = peers.confirm(central, peer, typed)
    body = record.body
    click.echo(f"{peer}: cross-certification #{body['serial']} valid to {format_time(body['exp'])}")
    click.echo("  every node of this city learns it at its next sync")


@click.command("renew")
@click.argument("central_dir", type=CENTRAL_DIR)
@click.option("--net", "peer", required=True, help="The peer city's network.")
@ITEM
@MODE
@ROLE
@DAYS
@refusals
def renew_command(
    central_dir: Path,
    peer: str,
    items: tuple[str, ...],
    modes: tuple[str, ...],
    roles: tuple[str, ...],
    valid_days: int,
) -> None:
    """Renew the agreement's cross-certification (a new scope if items are given)."""
    scope = _scope(items, modes, roles) if items or modes or roles else None
    with open_central(central_dir, CLOCK) as central:
        record = peers.renew(central, peer, scope=scope, valid_days=valid_days)
    body = record.body
    click.echo(f"{peer}: cross-certification #{body['serial']} valid to {format_time(body['exp'])}")


@click.command("revoke")
@click.argument("central_dir", type=CENTRAL_DIR)
@click.option("--net", "peer", required=True, help="The peer city's network.")
@click.option("--reason", required=True)
@refusals
def revoke_command(central_dir: Path, peer: str, reason: str) -> None:
    """Revoke the agreement with a city: every serial issued so far ends now."""
    with open_central(central_dir, CLOCK) as central:
        record = peers.revoke(central, peer, reason)
    click.echo(f"{peer}: revoked up to #{record.body['serial']}")


@click.command("list")
@click.argument("central_dir", type=CENTRAL_DIR)
@refusals
def list_command(central_dir: Path) -> None:
    """The peer cities: each one's newest cross-certification, its scope, and proposals."""
    now = CLOCK.now()
    with open_central(central_dir, CLOCK) as central:
        held, proposed = peers.listing(central)
        mirrors = {state.net: newest_mirror(central.store.db, state.net) for state in held}
    for state in held:
        newest = state.newest
        if newest is None:  # pragma: no cover - a state always has a cert
            continue
        revoked = state.revoked(newest, now)
        status = "revoked" if revoked else ("valid" if newest.holds(now) else "expired")
        click.echo(
            f"{state.net} {newest.name} #{newest.serial} {status} to {format_time(newest.exp)}"
            f" root {fingerprint(newest.root_pk)}"
        )
        for item in newest.scope.items:
            click.echo(
                f"  {item.item}:{item.cat} modes {','.join(sorted(item.modes))}"
                f" roles {','.join(sorted(item.roles))}"
            )
        mirror = mirrors.get(state.net)
        if mirror is not None:
            codes = " ".join(i.code for i in mirror.items)
            click.echo(f"  mirrored from its catalog version {mirror.cat}: {codes}")
    for proposal in proposed:
        click.echo(f"{proposal.peer} {proposal.name} proposed, root {fingerprint(proposal.root_pk)}")


@click.command("export-release")
@click.argument("central_dir", type=CENTRAL_DIR)
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@refusals
def export_release_command(central_dir: Path, out: Path) -> None:
    """Write this city's newest catalog release and its chain, for a peer city to mirror."""
    with open_central(central_dir, CLOCK) as central:
        data = peer_items.release_file(central)
    out.write_bytes(data)
    click.echo(f"{out}: the newest catalog release ({len(data)} bytes), for the peer's operator")


@click.command("items")
@click.argument("central_dir", type=CENTRAL_DIR)
@click.option("--net", "peer", required=True, help="The peer city's network.")
@click.option(
    "--release",
    "release",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The file the peer's export-release wrote.",
)
@refusals
def items_command(central_dir: Path, peer: str, release: Path) -> None:
    """Mirror the items the agreement names from a peer city's release carried by hand."""
    envelope, chain = peer_items.read_release_file(release.read_bytes())
    with open_central(central_dir, CLOCK) as central:
        record = peer_items.mirror(central, peer, envelope, chain)
    if record is None:
        click.echo(f"{peer}: nothing new to mirror")
        return
    body = record.body
    codes = " ".join(i["code"] for i in body["items"])
    click.echo(f"{peer}: {len(body['items'])} item(s) of catalog version {body['cat']} mirrored: {codes}")
    click.echo("  every node of this city offers them at its next sync")
