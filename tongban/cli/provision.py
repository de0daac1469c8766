"""``tongban provision …``: from an org-tree file to provisioned, enrolled, syncing nodes.

``inventory`` writes the Ansible inventory for an org tree (:mod:`provisioning`);
``apply`` writes it and runs a playbook on it — with ``ansible/site.yml``, the one command
IT staff run to set up or re-check a whole city; ``state`` prints, as JSON, what the
playbooks ask a directory before they act: whether a node or a department is initialized
and enrolled under its current key, and at central the anchor fingerprint and the live
certificate of each code. ``state`` only reads, so the playbooks can run it in check mode
too. ``broker`` writes central's RabbitMQ directory (:mod:`tongban.rabbitmq`) from the
spec the Ansible role writes, and says whether anything changed. ``carry-secrets`` gives a
node's new directory, after a key rotation, the clerks' passwords and device tokens of the
one moved aside. ``apply`` holds ``ORG_TREE.lock`` while it runs, so a second run of the
same city at once is refused (``E_PROVISION_BUSY``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import yaml

from central import authority
from central import config as central_config
from central.department import config as department_config
from central.department.store import DepartmentStore
from core.clock import SystemClock
from core.errors import ConfigError, ErrorCode
from node import config as node_config
from node import store as node_store
from node.files import carry_pages
from node.store import NodeStore
from provisioning import inventory, orgtree
from sync.projection import case_queries
from sync.record.enrollment import anchor_fingerprint
from sync.record.keys import fingerprint, load_key_file
from sync.record.log import signed_with
from sync.record.trust import certificates
from tongban import rabbitmq
from tongban.cli.refusals import refusals
from web import account_store

CLOCK = SystemClock()
DEFAULT_PLAYBOOK = Path("ansible/site.yml")


def load_tree(path: Path) -> orgtree.OrgTree:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(ErrorCode.CONFIG, f"{path}: {exc}") from exc
    return orgtree.parse(data)


def default_inventory(tree_file: Path) -> Path:
    return tree_file.with_name(tree_file.stem + ".inventory.yml")


@click.group("provision")
def provision() -> None:
    """Provision a city's nodes with Ansible from its org-tree file."""


@provision.command("inventory")
@click.argument("org_tree", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
@refusals
def inventory_command(org_tree: Path, out: Path | None) -> None:
    """Write the Ansible inventory for ORG_TREE (groups central, city, town, village)."""
    text = inventory.render(load_tree(org_tree))
    if out is None:
        click.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {out}", err=True)


@provision.command(
    "apply", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("org_tree", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--inventory",
    "inventory_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the inventory (default: ORG_TREE's name + .inventory.yml beside it).",
)
@click.option(
    "--playbook",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_PLAYBOOK,
    show_default=True,
    help="The playbook to run.",
)
@click.argument("ansible_args", nargs=-1, type=click.UNPROCESSED)
@refusals
def apply_command(
    org_tree: Path, inventory_file: Path | None, playbook: Path, ansible_args: tuple[str, ...]
) -> None:
    """Write the inventory for ORG_TREE and run ansible-playbook with it.

    This command's options come before ORG_TREE; everything after it goes to
    ansible-playbook as it is (--check, --limit, -e …). The exit status is ansible-playbook's.
    """
    target = inventory_file or default_inventory(org_tree)
    if not playbook.is_file():
        raise ConfigError(ErrorCode.CONFIG, f"no playbook at {playbook} (run from the checkout or pass it)")
    beside = Path(sys.executable).parent / "ansible-playbook"
    program = str(beside) if beside.exists() else shutil.which("ansible-playbook")
    if program is None:
        raise ConfigError(ErrorCode.CONFIG, "ansible-playbook is not installed (pip install ansible-core)")
    with run_lock(org_tree):
        target.write_text(inventory.render(load_tree(org_tree)), encoding="utf-8")
        code = subprocess.run([program, "-i", str(target), str(playbook), *ansible_args]).returncode
    sys.exit(code)


@contextlib.contextmanager
def run_lock(org_tree: Path) -> Iterator[None]:
    """Hold ``ORG_TREE.lock`` (``flock``) for the whole run: two runs on one city at once
    would create virtualenvs, keys and enrollments over each other. The second is refused
    with ``E_PROVISION_BUSY``, naming the run that holds the lock; the lock goes with the
    process, so a run that was killed leaves nothing to clean up."""
    path = org_tree.with_name(org_tree.name + ".lock")
    with open(path, "a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise ConfigError(ErrorCode.PROVISION_BUSY, f"{path} is held by {holder}") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n")
        lock.flush()
        yield


@provision.command("broker")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--programs",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the supervisord programs of epmd and the broker to this file.",
)
@refusals
def broker_command(spec: Path, programs: Path | None) -> None:
    """Write central's RabbitMQ directory from a JSON SPEC; print whether anything changed."""
    try:
        data = json.loads(spec.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(ErrorCode.CONFIG, f"{spec}: {exc}") from exc
    setup = rabbitmq.setup_from_spec(data)
    changed = setup.write()
    if programs is not None:
        text = rabbitmq.supervisor_programs(setup)
        if not programs.is_file() or programs.read_text(encoding="utf-8") != text:
            programs.write_text(text, encoding="utf-8")
            changed = True
    click.echo(json.dumps({"changed": changed, "node": setup.node, "users": sorted(setup.passwords)}))


@provision.command("state")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@refusals
def state_command(directory: Path) -> None:
    """Print what DIRECTORY holds, as JSON: a node's enrollment or central's certificates."""
    click.echo(json.dumps(directory_state(directory), sort_keys=True))


@provision.command("carry-secrets")
@click.argument("retired", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@refusals
def carry_secrets_command(retired: Path, directory: Path) -> None:
    """Carry the clerks' passwords, the device tokens and the scanned pages of RETIRED, a
    node directory a key rotation moved aside, into DIRECTORY, the same node's new one
    (rotate-keys.yml).

    They are the node's own, not keys, and never leave the machine: the clerks and kiosks
    go on logging in as before, and the pages of its cases stay at hand, also those not
    yet sent up (each checked by its hash, kept 0600 under the service account). Sessions
    are not carried (clerks log in again). Prints, as JSON, how many accounts, devices and
    pages were carried.
    """
    old, new = node_config.load(retired), node_config.load(directory)
    if old.node.code != new.node.code:
        raise ConfigError(ErrorCode.CONFIG, f"{retired} is {old.node.code}, {directory} is {new.node.code}")
    with (
        NodeStore.open(old.database_path, CLOCK) as source,
        NodeStore.open(new.database_path, CLOCK) as target,
    ):
        passwords = account_store.secrets_with_dates(source.db)
        for user, hashed, changed in passwords:
            account_store.replace_secret(target.db, user, hashed, changed)
        devices = node_store.put_device_token_rows(target.db, node_store.device_token_rows(source.db))
        pages = carry_pages(source, target, CLOCK.now())
    click.echo(json.dumps({"accounts": len(passwords), "devices": devices, "pages": pages}))


def directory_state(home: Path) -> dict[str, Any]:
    if (home / node_config.CONFIG_FILE).is_file():
        return _node_state(home)
    if (home / department_config.CONFIG_FILE).is_file():
        return _department_state(home)
    if (home / central_config.CONFIG_FILE).is_file():
        return _central_state(home)
    return {"role": "none"}


def _node_state(home: Path) -> dict[str, Any]:
    config = node_config.load(home)
    node_keys = load_key_file(config.key_path)
    with NodeStore.open(config.database_path, CLOCK) as store:
        enrolled = signed_with(store.db, config.node.code, node_keys.kid)
        head = store.log.head(config.node.code)
        unfinished = case_queries.unfinished(store.db, config.node.code)
    return {
        "role": "node",
        "code": config.node.code,
        "kid": node_keys.kid.hex(),
        "fingerprint": fingerprint(node_keys.sign_public),
        "enrolled": enrolled,
        "head": head.seq if head else 0,
        "unfinished": unfinished,
    }


def _department_state(home: Path) -> dict[str, Any]:
    config = department_config.load(home)
    own = load_key_file(config.key_path)
    with DepartmentStore.open(config.database_path, CLOCK) as store:
        enrolled = signed_with(store.db, config.code, own.kid)
        head = store.log.head(config.code)
    return {
        "role": "department",
        "code": config.code,
        "kid": own.kid.hex(),
        "fingerprint": fingerprint(own.sign_public),
        "enrolled": enrolled,
        "head": head.seq if head else 0,
    }


def _central_state(home: Path) -> dict[str, Any]:
    with authority.open_central(home, CLOCK) as central:
        anchor = central.store.log.anchor()
        assert anchor is not None  # central always holds its genesis
        live: dict[str, bytes] = {}
        for cert in certificates(central.store.db):  # by code, newest first
            if not cert.revoked:
                live.setdefault(cert.code, cert.kid)
        heads = {code: central.store.log.head(code) for code in live}
    return {
        "role": "central",
        "code": central.code,
        "anchor": anchor_fingerprint(anchor.genesis_id),
        "live": {code: kid.hex() for code, kid in live.items()},
        "heads": {code: head.seq if head else 0 for code, head in heads.items()},
    }
