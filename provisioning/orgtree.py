"""The org-tree file: a city's service centers and the hosts they run on, checked once.

The format is the demo's ``central/demo/org-tree.yaml`` with where each center runs::

    city: {code: "330481", name: 海宁市, host: 10.20.0.1}
    defaults: {web_port: 8400, sync_port: 7700, bind: 0.0.0.0, prefix: /srv/tongban}
    vars: {tongban_common_user: tongban}
    nodes:
      - {code: "330481104", name: 斜桥镇便民服务中心, tier: town, parent: "330481",
         host: 10.20.1.1}
      - {code: "330481104201", name: 新阳村便民服务中心, tier: village,
         parent: "330481104", host: 10.20.1.11, web_port: 8401}

and, optionally, the departments that decide items in their own back office, reached over
central's RabbitMQ::

    city: {…, amqp_port: 5672, amqp_listen: [127.0.0.1, 10.20.0.1]}
    departments:
      - {code: "330481GA", name: 海宁市公安局户政管理, department: 海宁市公安局,
         items: [GA-0001, GA-0007], host: 10.20.9.1, web_port: 8500}

``host`` is the address the other centers and Ansible reach a center at; ``bind`` the
address its services listen on. The broker listens on ``amqp_listen`` only (loopback by
default); a department on another host needs central's ``host`` among them.
``web_port``, ``sync_port``, ``bind`` and ``prefix`` may be set per center (or department)
and fall back to ``defaults``. Only central and towns serve sync, so only they take a
``sync_port``. ``vars`` go to every host as they are (Ansible variables named ``tongban_*``
or ``ansible_*``). Every key is checked: an unknown one, a code that does not
fit its tier or parent, a parent missing from the tree or two services on one port of one
host are refused with the code (``E_CONFIG`` naming the key and the center, or the code
:class:`core.admin.OrgUnit` gives).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.admin import OrgUnit, Tier, validate_node_code
from core.departments import check_department_code, check_items
from core.errors import ConfigError, ErrorCode, TongbanError

TOP_KEYS = frozenset({"city", "defaults", "vars", "nodes", "departments"})
CENTER_KEYS = frozenset({"code", "name", "host", "web_port", "sync_port", "bind", "prefix"})
CITY_KEYS = CENTER_KEYS | {"amqp_port", "amqp_listen"}
NODE_KEYS = CENTER_KEYS | {"tier", "parent"}
DEPARTMENT_KEYS = frozenset({"code", "name", "department", "items", "host", "web_port", "bind", "prefix"})
DEFAULTS = {"web_port": 8400, "sync_port": 7700, "bind": "0.0.0.0", "prefix": "/srv/tongban"}
VAR_PREFIXES = ("tongban_", "ansible_")


@dataclass(frozen=True)
class Center:
    """One center of the tree (central too) and where it runs."""

    code: str
    name: str
    tier: Tier
    parent: str | None
    host: str
    bind: str
    prefix: str
    web_port: int
    sync_port: int | None  # central and towns only

    @property
    def serves_sync(self) -> bool:
        return self.sync_port is not None


@dataclass(frozen=True)
class Department:
    """A department's back office and where it runs."""

    code: str
    name: str
    department: str  # the catalog's department of its items
    items: tuple[str, ...]
    host: str
    bind: str
    prefix: str
    web_port: int


@dataclass(frozen=True)
class OrgTree:
    """The checked tree: central first, then the nodes in file order, then the departments."""

    central: Center
    nodes: tuple[Center, ...]
    vars: Mapping[str, Any] = field(default_factory=dict)
    departments: tuple[Department, ...] = ()
    amqp_port: int = 5672
    amqp_listen: tuple[str, ...] = ("127.0.0.1",)

    def by_code(self, code: str) -> Center:
        if code == self.central.code:
            return self.central
        return next(n for n in self.nodes if n.code == code)


def _fail(where: str, detail: str) -> ConfigError:
    return ConfigError(ErrorCode.CONFIG, f"org tree, {where}: {detail}")


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and key == "code":
        raise _fail(where, f"'{key}' must be quoted: a number loses leading zeros")
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"'{key}' is required and must be text")
    return value.strip()


def _port(value: Any, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _fail(where, f"'{key}' must be a port number 1-65535, not {value!r}")
    return value


def _mapping(value: Any, where: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, "must be a mapping")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise _fail(where, f"unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})")
    return value


def _center(entry: Mapping[str, Any], defaults: Mapping[str, Any], tier: Tier, where: str) -> Center:
    merged = {**DEFAULTS, **defaults, **entry}
    code = _text(entry, "code", where)
    where = f"{where} ({code})"
    parent = None if tier is Tier.CENTRAL else _text(entry, "parent", where)
    try:
        if tier is Tier.CENTRAL:
            validate_node_code(code, tier)
        else:
            OrgUnit(code, _text(entry, "name", where), tier, parent)
    except TongbanError as exc:
        raise type(exc)(exc.code, f"org tree, {where}: {exc.detail}") from exc
    serves = tier in (Tier.CENTRAL, Tier.TOWN)
    if "sync_port" in entry and not serves:
        raise _fail(where, f"'sync_port': a {tier.value} node serves no sync endpoint")
    return Center(
        code=code,
        name=_text(entry, "name", where),
        tier=tier,
        parent=parent,
        host=_text(entry, "host", where),
        bind=_text(merged, "bind", where),
        prefix=_text(merged, "prefix", where),
        web_port=_port(merged["web_port"], "web_port", where),
        sync_port=_port(merged["sync_port"], "sync_port", where) if serves else None,
    )


def parse(data: Any) -> OrgTree:
    """Check an org tree read from YAML; raises :class:`TongbanError` naming what is wrong."""
    top = _mapping(data, "the file", TOP_KEYS)
    defaults = _mapping(top.get("defaults") or {}, "defaults", frozenset(DEFAULTS))
    extra = top.get("vars") or {}
    if not isinstance(extra, Mapping):
        raise _fail("vars", "must be a mapping")
    for key in extra:
        if not isinstance(key, str) or not key.startswith(VAR_PREFIXES):
            raise _fail("vars", f"'{key}' is not a tongban_* or ansible_* variable")
    central = _center(_mapping(top.get("city"), "city", CITY_KEYS), defaults, Tier.CENTRAL, "city")
    entries = top.get("nodes")
    if not isinstance(entries, list) or not entries:
        raise _fail("nodes", "a list of at least one center is required")
    nodes: list[Center] = []
    for index, raw in enumerate(entries, start=1):
        where = f"node {index}"
        entry = _mapping(raw, where, NODE_KEYS)
        try:
            tier = Tier(_text(entry, "tier", where))
        except ValueError as exc:
            raise _fail(where, f"'tier' must be city, town or village, not {entry['tier']!r}") from exc
        if tier is Tier.CENTRAL:
            raise _fail(where, "central is the 'city' entry, not a node")
        if tier is Tier.DEPARTMENT:
            raise _fail(where, "a department is listed under 'departments', not as a node")
        nodes.append(_center(entry, defaults, tier, where))
    city = top["city"]
    listen = city.get("amqp_listen", ["127.0.0.1"])
    if not isinstance(listen, list) or not listen or not all(isinstance(a, str) and a for a in listen):
        raise _fail("city", "'amqp_listen' must be a list of addresses")
    raw_departments = top.get("departments") or []
    if not isinstance(raw_departments, list):
        raise _fail("departments", "must be a list")
    tree = OrgTree(
        central,
        tuple(nodes),
        dict(extra),
        tuple(_department(_mapping(d, f"department {i}", DEPARTMENT_KEYS), defaults, f"department {i}")
              for i, d in enumerate(raw_departments, start=1)),
        _port(city.get("amqp_port", 5672), "amqp_port", "city"),
        tuple(listen),
    )  # fmt: skip
    _check_tree(tree)
    _check_departments(tree)
    return tree


def _department(entry: Mapping[str, Any], defaults: Mapping[str, Any], where: str) -> Department:
    merged = {**DEFAULTS, **defaults, **entry}
    code = _text(entry, "code", where)
    where = f"{where} ({code})"
    try:
        check_department_code(code)
        items = check_items(sorted(set(entry.get("items") or [])))
    except TongbanError as exc:
        raise type(exc)(exc.code, f"org tree, {where}: {exc.detail}") from exc
    return Department(
        code=code,
        name=_text(entry, "name", where),
        department=_text(entry, "department", where),
        items=items,
        host=_text(entry, "host", where),
        bind=_text(merged, "bind", where),
        prefix=_text(merged, "prefix", where),
        web_port=_port(merged["web_port"], "web_port", where),
    )


def _check_departments(tree: OrgTree) -> None:
    """Codes of this city, none twice; a department away from central's host reaches the
    broker only if it listens on central's address; no two services on one port."""
    central = tree.central
    codes = {n.code for n in tree.nodes}
    owners: dict[str, str] = {}
    for d in tree.departments:
        if not d.code.startswith(central.code) or d.code in codes:
            raise _fail(f"department {d.code}", f"not a new department of the city {central.code}")
        codes.add(d.code)
        for item in d.items:
            if owners.setdefault(item, d.code) != d.code:
                raise _fail(f"department {d.code}", f"{item} is decided by {owners[item]} already")
        local = d.host == central.host or d.host in ("localhost", "127.0.0.1")
        if not local and central.host not in tree.amqp_listen:
            raise _fail(
                f"department {d.code}", f"the broker listens on {list(tree.amqp_listen)}, not {central.host}"
            )
    taken = {(c.host, c.web_port) for c in (central, *tree.nodes)} | {(central.host, tree.amqp_port)}
    taken |= {(c.host, c.sync_port) for c in (central, *tree.nodes) if c.sync_port is not None}
    prefixes = {(c.host, c.prefix) for c in (central, *tree.nodes)}
    for d in tree.departments:
        for claim, seen, what in (
            ((d.host, d.web_port), taken, "port"),
            ((d.host, d.prefix), prefixes, "prefix"),
        ):
            if claim in seen:
                raise _fail(f"department {d.code}", f"{what} {claim[1]} on {d.host} is taken")
            seen.add(claim)  # type: ignore[arg-type]


def _check_tree(tree: OrgTree) -> None:
    known: dict[str, Center] = {tree.central.code: tree.central}
    for node in tree.nodes:
        if node.code in known:
            raise _fail(f"node {node.code}", "the code appears twice")
        if not node.code.startswith(tree.central.code):
            raise _fail(f"node {node.code}", f"not in the city {tree.central.code}")
        known[node.code] = node
    for node in tree.nodes:
        parent = known.get(node.parent or "")
        want = Tier.TOWN if node.tier is Tier.VILLAGE else Tier.CENTRAL
        if parent is None or parent.tier is not want:
            raise _fail(f"node {node.code}", f"its parent {node.parent} is not a {want.value} of the tree")
    taken: dict[tuple[str, int | str], str] = {}
    for center in (tree.central, *tree.nodes):
        claims: list[tuple[str, int | str]] = [(center.host, center.web_port), (center.host, center.prefix)]
        if center.sync_port is not None:
            if center.sync_port == center.web_port:
                raise _fail(f"node {center.code}", f"web and sync both on port {center.web_port}")
            claims.append((center.host, center.sync_port))
        for claim in claims:
            other = taken.setdefault(claim, center.code)
            if other != center.code:
                what = "prefix" if isinstance(claim[1], str) else "port"
                raise _fail(f"node {center.code}", f"{what} {claim[1]} on {center.host} is {other}'s too")
