"""The layout holds: no import cycles, SQL only where its tables are owned, modules of a size.

Read from the source, not from what happens to be imported: every ``import`` and ``from …
import`` of the product packages (inside functions and ``TYPE_CHECKING`` blocks too) is an
edge of the graph, and every string in a module that is an SQL statement names the tables
that module touches. A table is owned by the module whose string creates it (``CREATE
TABLE`` / ``CREATE VIEW``); any other module that names it needs an entry below saying why.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "sync", "web", "node", "central", "tongban", "provisioning")
MAX_LINES = 500

CO_OWNERS: dict[str, set[str]] = {
    # The log's write path: ingest appends records and keeps what it holds back or refuses.
    "records": {"sync.record.ingest"},
    "held": {"sync.record.ingest"},
    "rejected": {"sync.record.refused"},
    "forks": {"sync.record.ingest"},
    # The node's and central's migrations create the account tables the web kit's store owns.
    "clerk_secrets": {"node.store", "central.store"},
    "sessions": {"node.store", "central.store"},
    # Central's migration creates the catalog draft's tables; its draft store owns them.
    "catalog_draft": {"central.draft_store"},
    "catalog_draft_items": {"central.draft_store"},
}
"""Modules that write a table they do not create, and why."""

READS: dict[str, set[str]] = {
    # Verification replays every record and compares every projection table with a rebuild.
    "sync.record.inspect": {"*"},
    # The link scans the log by arrival: that is what it sends.
    # The window's news and SMS outbox count "new since" in the log's arrival index.
    "sync.record.arrival": {"records"},
    "sync.link.store": {"records"},
    # The readers of the log's fork evidence (which forks are open, where an origin is
    # frozen), beside the log: they read the held record of each fork and what was refused.
    "sync.record.forks": {"forks", "records", "rejected"},
    # Migrations that project records already held when a table is added.
    "sync.schema": {"records", "meta"},
    # The quarantined view joins the log's records with the revocations.
    "sync.record.trust": {"records"},
    # Central's dashboard and registry: one read model over several projections (set-based
    # queries, one per figure, over a city's cases; its docstring lists the tables).
    "central.report_store": {
        "cases",
        "case_events",
        "quarantined",
        "node_status",
        "link_receipts",
        "link_peers",
        "link_rejections",
        "catalog_releases",
        "records",
    },
    # Central's re-check picks the intakes it has not judged yet, and the quarantined ones.
    "central.store": {"cases", "quarantined"},
    # A receipt's witness is void when its record is quarantined.
    "sync.projection.status": {"quarantined"},
    # The cases projection's readers, in a module of their own beside its writer.
    "sync.projection.case_queries": {"cases", "case_events"},
}
"""Modules that read tables they do not own (``*``: any), and why."""

SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|WITH|PRAGMA)\b", re.I)
CREATES = re.compile(r"\bCREATE\s+(?:TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)
NAMES = re.compile(r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE|VIEW)\s+(\w+)", re.I)


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            yield ".".join(parts), path


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The product modules ``name`` imports (the longest known prefix of each target)."""

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    found: set[str] = set()
    for node in ast.walk(tree(path)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if path.name == "__init__.py" else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            module = resolve(target)
            if (
                module
                and module != name
                and not (path.name == "__init__.py" and module.startswith(name + "."))
            ):
                found.add(module)
                break
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            node, edges = work[-1]
            for edge in edges:
                if edge not in index:
                    index[edge] = low[edge] = counter
                    counter += 1
                    stack.append(edge)
                    on.add(edge)
                    work.append((edge, iter(sorted(graph.get(edge, ())))))
                    break
                if edge in on:
                    low[node] = min(low[node], index[edge])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def sql_strings(path: Path) -> Iterator[str]:
    """Every string constant of the module that is (the start of) an SQL statement, with the
    literal parts of f-strings and of ``"a" " b"`` concatenations joined."""
    for node in ast.walk(tree(path)):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(
                v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
        if text and SQL.match(text):
            yield text


def executes(path: Path) -> int:
    count = 0
    for node in ast.walk(tree(path)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("execute", "executemany", "executescript")
        ):
            count += 1
    return count


def owners() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for name, path in modules():
        for text in sql_strings(path):
            for table in CREATES.findall(text):
                found.setdefault(table, set()).add(name)
    for table, extra in CO_OWNERS.items():
        found.setdefault(table, set()).update(extra)
    return found


def test_the_product_packages_have_no_import_cycle() -> None:
    known = {name for name, _ in modules()}
    graph = {name: imports_of(name, path, known) for name, path in modules()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_sql_runs_only_where_tables_are_owned() -> None:
    tables = owners()
    stray = []
    for name, path in modules():
        texts = list(sql_strings(path))
        if executes(path) and not texts and name not in READS:
            continue  # an execute() that is no SQL statement of ours (a thread pool's, say)
        for text in texts:
            creating = set(CREATES.findall(text))
            for table in set(NAMES.findall(text)) - creating:
                if table.startswith("sqlite_") or table not in tables or name in tables[table]:
                    continue
                allowed = READS.get(name, set())
                if "*" in allowed or table in allowed:
                    continue
                stray.append(f"{name}: {table}")
    assert sorted(set(stray)) == []


def test_every_table_has_exactly_one_creating_module() -> None:
    created: dict[str, set[str]] = {}
    for name, path in modules():
        for text in sql_strings(path):
            for table in CREATES.findall(text):
                created.setdefault(table, set()).add(name)
    twice = {table: sorted(mods) for table, mods in created.items() if len(mods) > 1}
    # The node's migration created the same two account tables as the web kit's store does;
    # both are shipped, so both stay (a migration that shipped is never edited).
    assert set(twice) <= {"clerk_secrets", "sessions"}, twice


def test_no_product_module_is_over_the_size_limit() -> None:
    sizes = {name: path.read_text(encoding="utf-8").count("\n") for name, path in modules()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_the_department_back_office_imports_nothing_of_central_but_itself() -> None:
    # A department's host runs it without any of central's data; the import-linter contract
    # names central's modules, this catches one added after it.
    known = {name for name, _ in modules()}
    inside = "central.department"
    stray = {
        f"{name} -> {target}"
        for name, path in modules()
        if name == inside or name.startswith(inside + ".")
        for target in imports_of(name, path, known)
        if (target == "central" or target.startswith("central.")) and not target.startswith(inside)
    }
    assert stray == set()
