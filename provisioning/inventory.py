"""From a checked org tree to the Ansible inventory ``ansible/site.yml`` runs on.

Groups: ``central``; ``nodes`` with its children ``city``, ``town`` and ``village`` (the
site playbook provisions them in that order: a village is enrolled under a town central
already knows); ``departments``, the back offices, provisioned after central, whose host
then also runs the broker (``tongban_rabbitmq_*``). Every host is named ``tongban-<code>``,
so two centers may share a machine (central and the city-hall node often do) with their
own prefixes and ports.

Each host gets the variables its role reads (named after the role, as the roles' defaults
document them): who it is, where it lives, where it listens and which endpoints it syncs
with. Endpoints are computed here once from the tree: a village syncs with its town and
falls back to central; the city hall and the towns sync with central. A host at
``localhost`` or ``127.0.0.1`` is reached with Ansible's local connection.
"""

from __future__ import annotations

from typing import Any

import yaml

from core.admin import Tier
from provisioning.orgtree import Center, Department, OrgTree

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
HEADER = (
    "# Ansible inventory written by 'tongban provision inventory' from the org tree.\n"
    "# Edit the org tree and write it again; changes made here are lost.\n"
)


def host_name(center: Center) -> str:
    return f"tongban-{center.code}"


def endpoint(center: Center) -> str:
    """Where the others reach ``center``'s sync endpoint."""
    return f"tcp://{center.host}:{center.sync_port}"


def _connection(host: str) -> dict[str, Any]:
    out: dict[str, Any] = {"ansible_host": host}
    if host in LOCAL_HOSTS:
        out["ansible_connection"] = "local"
        out["ansible_python_interpreter"] = "{{ ansible_playbook_python }}"
    return out


def _central_vars(tree: OrgTree) -> dict[str, Any]:
    central = tree.central
    out: dict[str, Any] = {
        **_connection(central.host),
        "tongban_common_prefix": central.prefix,
        "tongban_central_code": central.code,
        "tongban_central_name": central.name,
        "tongban_central_web_listen": f"{central.bind}:{central.web_port}",
        "tongban_central_sync_listen": f"tcp://{central.bind}:{central.sync_port}",
    }
    if tree.departments:
        out |= {
            "tongban_central_departments": [d.code for d in tree.departments],
            "tongban_central_amqp_port": tree.amqp_port,
            "tongban_rabbitmq_departments": [d.code for d in tree.departments],
            "tongban_rabbitmq_port": tree.amqp_port,
            "tongban_rabbitmq_listen": list(tree.amqp_listen),
        }
    return out


def _department_vars(tree: OrgTree, department: Department) -> dict[str, Any]:
    central = tree.central
    here = department.host == central.host or department.host in LOCAL_HOSTS
    return {
        **_connection(department.host),
        "tongban_common_prefix": department.prefix,
        "tongban_department_code": department.code,
        "tongban_department_name": department.name,
        "tongban_department_department": department.department,
        "tongban_department_items": list(department.items),
        "tongban_department_web_listen": f"{department.bind}:{department.web_port}",
        "tongban_department_amqp_host": "127.0.0.1" if here else central.host,
        "tongban_department_amqp_port": tree.amqp_port,
    }


def _node_vars(tree: OrgTree, node: Center) -> dict[str, Any]:
    parent = tree.by_code(node.parent or "")
    village = node.tier is Tier.VILLAGE
    return {
        **_connection(node.host),
        "tongban_common_prefix": node.prefix,
        "tongban_node_code": node.code,
        "tongban_node_name": node.name,
        "tongban_node_tier": node.tier.value,
        "tongban_node_parent": parent.code,
        "tongban_node_web_listen": f"{node.bind}:{node.web_port}",
        "tongban_node_sync_parent": endpoint(parent),
        "tongban_node_sync_fallback": endpoint(tree.central) if village else "",
        "tongban_node_sync_listen": f"tcp://{node.bind}:{node.sync_port}" if node.serves_sync else "",
    }


def build(tree: OrgTree) -> dict[str, Any]:
    """The inventory as a mapping (YAML inventory structure)."""
    groups: dict[str, dict[str, Any]] = {tier: {} for tier in ("city", "town", "village")}
    for node in tree.nodes:
        groups[node.tier.value][host_name(node)] = _node_vars(tree, node)
    central = host_name(tree.central)
    children: dict[str, Any] = {
        "central": {"hosts": {central: _central_vars(tree)}},
        "nodes": {
            "children": {tier: {"hosts": hosts} for tier, hosts in groups.items() if hosts},
        },
    }
    if tree.departments:
        children["departments"] = {
            "hosts": {f"tongban-{d.code}": _department_vars(tree, d) for d in tree.departments}
        }
    return {
        "all": {
            "vars": {
                "tongban_node_central_host": central,
                **({"tongban_department_central_host": central} if tree.departments else {}),
                **tree.vars,
            },
            "children": children,
        }
    }


def render(tree: OrgTree) -> str:
    """The inventory as YAML text, with a header that says where it came from."""
    body = yaml.safe_dump(build(tree), allow_unicode=True, sort_keys=False, default_flow_style=False)
    return HEADER + body
