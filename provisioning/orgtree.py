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

``host`` is the address the other centers and Ansible reach a center at; ``bind`` the
address its services listen on. ``web_port``, ``sync_port``, ``bind`` and ``prefix`` may be
set per center and fall back to ``defaults``. Only central and towns serve sync, so only
they take a ``sync_port``. ``vars`` go to every host as they are (Ansible variables named
``tongban_*`` or ``ansible_*``). Every key is checked: an unknown one, a code that does not
fit its tier or parent, a parent missing from the tree or two services on one port of one
host are refused with the code (``E_CONFIG`` naming the key and the center, or the code
:class:`core.admin.OrgUnit` gives).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.admin import OrgUnit, Tier, validate_node_code
from core.errors import ConfigError, ErrorCode, TongbanError

TOP_KEYS = frozenset({"city", "defaults", "vars", "nodes"})
CITY_KEYS = frozenset({"code", "name", "host", "web_port", "sync_port", "bind", "prefix"})
NODE_KEYS = CITY_KEYS | {"tier", "parent"}
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
class OrgTree:
    """The checked tree: central first, then the nodes in file order."""

    central: Center
    nodes: tuple[Center, ...]
    vars: Mapping[str, Any] = field(default_factory=dict)

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
    tree = OrgTree(central, tuple(nodes), dict(extra))
    _check_tree(tree)
    return tree


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
