"""``tongban central rebuild|restore|backup``: central's store rebuilt from the network,
restored from a copy (through a rebuild), and copied while central runs.

The rebuild runs central's sync endpoint in the foreground (``[sync] listen``, or
``--listen``) while central signs nothing (:mod:`central.rebuild`), prints a line for each
node it waits for whenever one changes — synced since the rebuild began or not, and how far
it holds the root's chain — and finishes once every one of them has synced, or after
``--wait`` seconds with ``--force``. Stop central's own services first: the endpoint's
address is theirs. Interrupted, it leaves central rebuilding; run it again to go on.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import click

from central import config as central_config
from central.authority import open_central
from central.backup import FILES, Copy, backup
from central.rebuild import Rebuild, begin, finish, progress, restore, root_head, signed_beyond
from core.clock import SystemClock
from core.errors import ErrorCode, StoreError, TongbanError
from sync.link.endpoint import ParentServer
from sync.record.inspect import format_time
from tongban.cli.refusals import refusals
from tongban.homes import open_home

CLOCK = SystemClock()
CENTRAL_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


def _options(fn: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(
        (
            click.option("--listen", help="The endpoint to serve the nodes on (default: [sync] listen)."),
            click.option(
                "--wait", default=1800.0, show_default=True, help="Seconds to wait for the nodes to sync."
            ),
            click.option(
                "--force", is_flag=True, help="Finish after --wait even if some nodes did not sync."
            ),
            click.option(
                "--accept-loss",
                is_flag=True,
                help="Finish although central's watermark says it signed more than the nodes gave back.",
            ),
        )
    ):
        fn = option(fn)
    return fn


@click.command("rebuild")
@click.argument("directory", type=CENTRAL_DIR)
@click.option("--seed", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Seed store.")
@_options
@refusals
def central_rebuild(
    directory: Path, seed: Path | None, listen: str | None, wait: float, force: bool, accept_loss: bool
) -> None:
    """Rebuild central's store from the network: from the store in place (an older copy),
    or from --seed (an older copy of central's store, any node's store or a bundle)."""
    _collect(directory, begin(directory, CLOCK, seed=seed), listen, wait, force, accept_loss)


@click.command("restore")
@click.argument("copy", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("directory", type=CENTRAL_DIR)
@_options
@refusals
def central_restore(
    copy: Path, directory: Path, listen: str | None, wait: float, force: bool, accept_loss: bool
) -> None:
    """Put a backup copy of central's store in place and rebuild from the network what
    central signed after it (a copy is never signed on from as it is)."""
    rebuild, pages = restore(directory, copy, CLOCK)
    click.echo(
        f"put back {copy.name}: {pages.held} scanned page(s) held, {pages.from_copy} of them from"
        f" the copy's {FILES}/"
    )
    for sha in pages.lost:
        click.echo(
            f"  {ErrorCode.FILE_MISSING.value}: page {sha} is whole in neither: removed, it counts"
            " as not received"
        )
    _collect(directory, rebuild, listen, wait, force, accept_loss)


@click.command("backup")
@click.argument("directory", type=CENTRAL_DIR)
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--keep", default=48, show_default=True, type=click.IntRange(1), help="Copies to keep.")
@click.option("--every", type=click.IntRange(1), help="Take a copy every SECONDS until stopped.")
@refusals
def central_backup(directory: Path, dest: Path, keep: int, every: int | None) -> None:
    """Copy central's store into DEST while central runs (SQLite's backup API), and the
    scanned pages it holds into DEST/files, keeping the newest --keep copies; with --every,
    again and again (a supervisor program)."""
    if every is None:
        _told(backup(directory, dest, keep=keep, clock=CLOCK))
        return
    stop = _stopping()
    while not stop.is_set():
        try:
            made = backup(directory, dest, keep=keep, clock=CLOCK)
        except TongbanError as exc:  # the next copy may succeed (a store being put back)
            click.echo(f"no copy this time: {exc.render('en')}", err=True)
        else:
            _told(made)
        stop.wait(every)


def _told(made: Copy) -> None:
    click.echo(
        f"backed up central's store to {made.path}, with {made.pages} scanned page(s)"
        f" ({made.new_pages} new) in {made.path.parent / FILES}"
    )
    for sha in made.lacking:
        click.echo(
            f"  {ErrorCode.FILE_MISSING.value}: page {sha} is missing or damaged in central's file"
            " store: not in this copy (run tongban verify)",
            err=True,
        )


def _stopping() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _collect(
    directory: Path, rebuild: Rebuild, listen: str | None, wait: float, force: bool, accept_loss: bool
) -> None:
    bind = listen or central_config.load(directory).sync.listen
    if not bind:
        raise click.UsageError("no endpoint: pass --listen or set [sync] listen")
    click.echo(
        f"central is rebuilding since {format_time(rebuild.started)} (from {rebuild.seed}): it signs nothing"
    )
    stop = _stopping()
    deadline = time.monotonic() + wait
    shown: list[str] = []
    with ParentServer(lambda: open_home(directory), bind) as server:
        click.echo(f"  serving the nodes at {server.endpoint}")
        while True:
            with open_central(directory, CLOCK) as central:
                rows, head = progress(central, rebuild), root_head(central)
            lines = [
                f"  {row.code} {row.name}: {'synced' if row.synced else 'waiting'},"
                f" root #{row.root_seq if row.root_seq is not None else '-'}"
                for row in rows
            ]
            if lines != shown:
                click.echo(f"central's root chain: #{head}")
                for line in lines:
                    click.echo(line)
                shown = lines
            waiting = [row.code for row in rows if not row.synced]
            if not waiting or time.monotonic() > deadline or stop.is_set() or not server.alive:
                break
            stop.wait(1.0)
    if stop.is_set():
        raise StoreError(ErrorCode.CENTRAL_REBUILDING, "interrupted: run the same command again to go on")
    if waiting and not force:
        raise StoreError(
            ErrorCode.CENTRAL_REBUILDING,
            f"not synced yet: {', '.join(waiting)}; run again to wait longer, or finish with --force",
        )
    with open_central(directory, CLOCK) as central:
        beyond = signed_beyond(central)
        head = finish(central, accept_loss=accept_loss)
    if beyond is not None:
        click.echo(f"  given up #{head + 1}..#{beyond}: signed by central, held by no node that synced")
    click.echo(f"rebuilt: central holds its chain through #{head} and signs on from #{head + 1}")
