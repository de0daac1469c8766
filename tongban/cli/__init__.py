"""The ``tongban`` command line: node and central administration, sync, inspection, the demo.

This is the composition root: the only place that joins ``node``, ``central`` and
``sync``. The groups are defined here and every command is registered here, in one
list; the commands live in the modules of this package, by concern:

* :mod:`tongban.cli.node`: ``node init|request|enroll|show|accept-loss|clerk|device|serve``;
* :mod:`tongban.cli.central`: ``central init|enroll-token|enroll|revoke-node|publish-catalog|
  publish-calendar|grant|admin``;
* :mod:`tongban.cli.department`: ``department init|enroll|show|clerk``, ``central enroll-department``;
* :mod:`tongban.cli.authority`: ``central keys|rotate-key|rotate-root|heartbeat|recheck``;
* :mod:`tongban.cli.peers`: ``central fingerprint``, ``central peer propose|confirm|renew|revoke|list|
  items|export-release``;
* :mod:`tongban.cli.sync`: ``node sync``, ``node run``, ``central run``, ``department run``,
  ``serve-sync``;
* :mod:`tongban.cli.rebuild`: ``central rebuild|restore|backup``;
* :mod:`tongban.cli.inspection`: ``verify``, ``log``;
* :mod:`tongban.cli.demo`: ``demo init|start|stop``;
* :mod:`tongban.cli.provision`: ``provision inventory|apply|state|carry-secrets``;
* :mod:`tongban.cli.city`: ``city status``.

Every command is documented in docs/cli.md (a test checks that).

Exit status: 0 success; 1 verification found faults; 2 usage error; 3 a refusal with a
stable error code, printed as ``E_CODE: 中文 / English (detail)`` (:mod:`tongban.cli.refusals`).
"""

from __future__ import annotations

import warnings

import click

from tongban import __version__
from tongban.cli import (
    authority,
    central,
    city,
    demo,
    department,
    inspection,
    node,
    peers,
    provision,
    rebuild,
    sync,
)

# eventlet's notice is for developers, not for an operator reading a refusal (as tongban.run)
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


@click.group()
@click.version_option(__version__, prog_name="tongban")
def main() -> None:
    """Tongban (通办): offline-first service-center nodes that sync signed records."""


@click.group("node")
def node_group() -> None:
    """Set up and inspect a service-center node (city hall, town or village)."""


@click.group("central")
def central_group() -> None:
    """Run the city authority: trust anchor, certificates, catalog."""


@click.group("peer")
def peer_group() -> None:
    """Agreements with other cities: propose, confirm, renew, revoke, list."""


@click.group("department")
def department_group() -> None:
    """Set up and inspect a department's back office (公安, 人社, 医保 …)."""


@click.group("demo")
def demo_group() -> None:
    """A small demo network on this machine."""


COMMANDS: tuple[tuple[click.Group, click.Command], ...] = (
    (main, node_group),
    (node_group, node.node_init),
    (node_group, node.node_request),
    (node_group, node.node_enroll),
    (node_group, node.node_show),
    (node_group, node.node_accept_loss),
    (node_group, node.clerk),
    (node_group, node.device),
    (node_group, node.serve),
    (node_group, sync.sync_command),
    (node_group, sync.node_run),
    (main, central_group),
    (central_group, central.central_init),
    (central_group, central.central_enroll_token),
    (central_group, central.central_enroll),
    (central_group, central.central_revoke),
    (central_group, central.central_publish),
    (central_group, central.central_publish_calendar),
    (central_group, central.central_grant),
    (central_group, central.admin),
    (central_group, department.central_enroll_department),
    (central_group, authority.keys_command),
    (central_group, authority.rotate_key_command),
    (central_group, authority.rotate_root_command),
    (central_group, authority.heartbeat_command),
    (central_group, authority.recheck_command),
    (central_group, peers.fingerprint_command),
    (central_group, peer_group),
    (peer_group, peers.propose_command),
    (peer_group, peers.confirm_command),
    (peer_group, peers.renew_command),
    (peer_group, peers.revoke_command),
    (peer_group, peers.list_command),
    (peer_group, peers.items_command),
    (peer_group, peers.export_release_command),
    (central_group, sync.central_run),
    (central_group, rebuild.central_rebuild),
    (central_group, rebuild.central_restore),
    (central_group, rebuild.central_backup),
    (main, department_group),
    (department_group, department.department_init),
    (department_group, department.department_enroll),
    (department_group, department.department_show),
    (department_group, department.clerk),
    (department_group, sync.department_run),
    (main, sync.serve_command),
    (main, inspection.verify),
    (main, inspection.log),
    (main, demo_group),
    (demo_group, demo.demo_init),
    (demo_group, demo.demo_start),
    (demo_group, demo.demo_stop),
    (main, provision.provision),
    (main, city.city),
)
"""Every command, with the group it belongs to."""

for group, command in COMMANDS:
    group.add_command(command)
