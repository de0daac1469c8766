"""What a node's or central's directory runs, read from its configuration.

* a node: the clerk web service (``[web] listen``); the sync agent when it has somewhere
  to sync (``[sync] parent``, ``fallback`` or ``direct_to_central``); and, at a town with
  ``[sync] listen``, the sync endpoint for its villages;
* central: the operator web service (``[web] listen``), the sync endpoint (``[sync]
  listen``) and its timed duties (the signed heartbeat, :mod:`central.heartbeat`); with
  ``[peers] listen``, the link with other cities' centrals (:mod:`central.peer_service`);
  with an ``[amqp] uri``, the department link (:mod:`central.department_link`);
* a department: its desk (``[web] listen``) and, with an ``[amqp] uri``, its link to
  central (:mod:`central.department.service`).

Each service belongs to a part — ``web``, ``sync`` (the ZeroMQ links and central's
duties) or ``broker`` (the department link) — so that supervisor can run the broker link
in a process of its own: a broker that is down or restarting never touches the rest.

:mod:`tongban.run` runs the plan, after the store's first check (:func:`first_check`: it
opens, takes its migrations and passes SQLite's ``quick_check``); a store that fails it
starts no service. ``tongban node run`` and ``tongban central run`` check the plan before
they hand over to that module.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from central import config as central_config
from central.department import config as department_config
from central.department.store import DepartmentStore
from central.store import CentralStore
from core.clock import SystemClock
from core.errors import ConfigError, ErrorCode
from node import config as node_config
from node.store import NodeStore
from web.deps import HOME_KEY


@dataclass
class Plan:
    """What one directory runs: services, their nameko config, and a line for each."""

    title: str
    services: list[tuple[str, type, str]] = field(default_factory=list)  # (part, service, line)
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def lines(self) -> list[str]:
        return [self.title, *(f"  {line}" for _, _, line in self.services), *(f"  {n}" for n in self.notes)]


PARTS = ("web", "sync", "broker")


def plan_for(home: Path, web_listen: str | None = None, only: str | None = None) -> Plan:
    """The services ``home`` runs (``only`` its ``web`` or its ``sync`` services).

    Raises :class:`TongbanError` when it has nothing to run.
    """
    plan = _plan(home.resolve(), web_listen)
    if only is not None:
        plan.services = [entry for entry in plan.services if entry[0] == only]
    if not plan.services:
        what = f"{only} service" if only else "service"
        raise ConfigError(ErrorCode.CONFIG, f"{home} has no {what} to run (see [sync], [web] and [amqp])")
    return plan


def first_check(home: Path) -> None:
    """Refuse to start on a store that does not open, cannot take its migrations or fails
    SQLite's ``quick_check`` (``E_STORE_CORRUPT``, ``E_STORE_MISSING`` …): a service on
    a damaged store would fail every request, or worse, write on top of the damage."""
    clock = SystemClock()
    if (home / node_config.CONFIG_FILE).is_file():
        with NodeStore.open(node_config.load(home).database_path, clock) as node_store:
            node_store.check()
    elif (home / central_config.CONFIG_FILE).is_file():
        with CentralStore.open(central_config.load(home).database_path, clock) as central_store:
            central_store.check()
    elif (home / department_config.CONFIG_FILE).is_file():
        with DepartmentStore.open(department_config.load(home).database_path, clock) as department_store:
            department_store.check()
    else:
        raise ConfigError(
            ErrorCode.NOT_INITIALIZED, f"{home} has no node.toml, central.toml or department.toml"
        )


def _plan(home: Path, web_listen: str | None) -> Plan:
    from tongban.sync_services import SyncAgent, SyncEndpoint

    if (home / node_config.CONFIG_FILE).is_file():
        from node.web.service import NodeWeb

        config = node_config.load(home)
        listen = web_listen or config.web.listen
        plan = Plan(f"{config.node.name} ({config.node.code})")
        plan.config = {"SYNC_HOME": str(home), HOME_KEY: str(home), "WEB_SERVER_ADDRESS": listen}
        plan.services.append(("web", NodeWeb, f"clerk web at http://{listen}/"))
        sync = config.sync
        if sync.listen:
            plan.services.append(("sync", SyncEndpoint, f"sync endpoint for its villages at {sync.listen}"))
        if sync.parent or sync.fallback or sync.direct_to_central:
            where = sync.fallback if sync.direct_to_central else sync.parent or sync.fallback
            line = f"sync agent: with {where} every {max(1, sync.interval)} s"
            plan.services.append(("sync", SyncAgent, line))
        else:
            plan.notes.append("no [sync] parent is configured: this node works offline only")
        return plan
    if (home / central_config.CONFIG_FILE).is_file():
        central = central_config.load(home)
        from central.heartbeat import EVERY
        from central.services import HOME_KEY as CENTRAL_HOME_KEY
        from central.services import CentralDuties
        from central.web.service import CentralWeb

        listen = web_listen or central.web.listen
        plan = Plan(
            f"{central.central.name} ({central.central.code})",
            config={
                "SYNC_HOME": str(home),
                CENTRAL_HOME_KEY: str(home),
                HOME_KEY: str(home),
                "WEB_SERVER_ADDRESS": listen,
            },
        )
        plan.services.append(("web", CentralWeb, f"operator web at http://{listen}/"))
        if central.sync.listen:
            plan.services.append(("sync", SyncEndpoint, f"sync endpoint at {central.sync.listen}"))
        else:
            plan.notes.append("no [sync] listen is configured")
        plan.services.append(("sync", CentralDuties, f"signed heartbeat every {EVERY // 60} min"))
        if central.peers.listen:
            from central.peer_service import CentralPeers

            every = central.peers.interval_seconds
            line = f"peer link: endpoint at {central.peers.listen}, pushes every {every} s"
            plan.services.append(("sync", CentralPeers, line))
        if central.amqp.uri:
            from central.department_link import CentralDepartments

            plan.config.update(amqp_config(central.amqp.uri, central.amqp.ca_file))
            line = f"department link: events and decisions over {_host_of(central.amqp.uri)}"
            plan.services.append(("broker", CentralDepartments, line))
        else:
            plan.notes.append("no [amqp] uri is configured: departments' cases wait at central")
        return plan
    if (home / department_config.CONFIG_FILE).is_file():
        return _department_plan(home, web_listen)
    raise ConfigError(ErrorCode.NOT_INITIALIZED, f"{home} has no node.toml, central.toml or department.toml")


def _department_plan(home: Path, web_listen: str | None) -> Plan:
    from central.department.entrypoints import DEPARTMENT_KEY
    from central.department.service import DepartmentLink
    from central.department.web.service import DepartmentWeb

    config = department_config.load(home)
    listen = web_listen or config.web.listen
    plan = Plan(f"{config.department.name} ({config.code})")
    plan.config = {HOME_KEY: str(home), "WEB_SERVER_ADDRESS": listen, DEPARTMENT_KEY: config.code}
    plan.services.append(("web", DepartmentWeb, f"department desk at http://{listen}/"))
    if config.amqp.uri:
        plan.config.update(amqp_config(config.amqp.uri, config.amqp.ca_file))
        line = f"link to central: events and decisions over {_host_of(config.amqp.uri)}"
        plan.services.append(("broker", DepartmentLink, line))
    else:
        plan.notes.append("no [amqp] uri is configured: no case reaches this desk")
    return plan


def amqp_config(uri: str, ca_file: str) -> dict[str, Any]:
    """nameko's broker settings for ``[amqp]``: TLS, checking the broker's certificate, when
    a CA file is given."""
    settings: dict[str, Any] = {"AMQP_URI": uri}
    if ca_file:
        settings["AMQP_SSL"] = {"ca_certs": ca_file, "cert_reqs": ssl.CERT_REQUIRED}
    return settings


def _host_of(uri: str) -> str:
    """The broker's address in ``uri``, without its credentials (for the start-up lines)."""
    return uri.rsplit("@", 1)[-1]
