"""Opening a node's or central's directory: the wiring every command and service shares.

:func:`open_home` reads ``node.toml`` or ``central.toml``, opens the store and the keys,
and returns an :class:`OpenedHome` — what the sync link needs of a store
(:class:`sync.link.transport.Home`), with the node's work around a session behind its
hooks (:mod:`node.sync_hooks`). Use it as a context manager::

    with open_home(directory) as home:
        sync_once(home, upstreams(home))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from central import config as central_config
from central.authority import open_central
from central.keyring import CentralKeyring
from central.store import CentralStore
from core.clock import Clock, SystemClock
from core.errors import ConfigError, ErrorCode
from node import config as node_config
from node import sync_hooks
from node.desk import signing_keys
from node.store import NodeStore
from sync.link.transport import LinkSettings, SyncResult, Upstream, upstreams_for
from sync.record.filestore import FileStore
from sync.record.keys import NodeKeys, load_key_file
from sync.record.log import RecordLog
from sync.record.outcome import Heads
from sync.record.watermark import guard_of

CLOCK = SystemClock()
MIB = 1024 * 1024


@dataclass
class OpenedHome:
    """A node's or central's store and keys, opened for sync (a :class:`sync.link.transport.Home`)."""

    log: RecordLog
    keys: NodeKeys | CentralKeyring  # signs, and holds the CURVE secret
    code: str
    parent: str
    settings: LinkSettings
    store: NodeStore | CentralStore = field(repr=False)

    @property
    def files(self) -> FileStore:
        return self.store.files

    @property
    def is_node(self) -> bool:
        return isinstance(self.store, NodeStore)

    def welcomed(self, parent_heads: Heads, backlog: int, version: int) -> None:
        if self.is_node:
            sync_hooks.welcomed(self.log, self.keys, self.code, parent_heads, backlog, version, self.files)

    def synced(self, result: SyncResult) -> None:
        if self.is_node:
            sync_hooks.synced(self.log, self.keys, self.code)

    def signed_through(self) -> int:
        guard = self.keys.guard if isinstance(self.keys, CentralKeyring) else guard_of(self.keys)
        return guard.watermark.read() if guard is not None else 0

    def upstreams(self) -> list[Upstream]:
        """The parents to sync with, in order (:func:`sync.link.transport.upstreams_for`)."""
        s = self.settings
        return upstreams_for(self.log, self.parent, s.parent, s.fallback or None, s.direct_to_central)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> OpenedHome:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_home(home: Path, clock: Clock = CLOCK) -> OpenedHome:
    """Open ``home`` (a node directory or central's) for sync."""
    if (home / node_config.CONFIG_FILE).is_file():
        config = node_config.load(home)
        section = config.sync
        settings = LinkSettings(
            listen=section.listen,
            parent=section.parent,
            fallback=section.fallback,
            direct_to_central=section.direct_to_central,
            interval=section.interval,
            files_up_kbit=section.files_up_kbit,
            files_budget=config.files.budget_mb * MIB,
        )
        node_store = NodeStore.open(config.database_path, clock)
        keys = signing_keys(load_key_file(config.key_path), node_store, config.node.code, config.key_path)
        return OpenedHome(node_store.log, keys, config.node.code, config.node.parent, settings, node_store)
    if (home / central_config.CONFIG_FILE).is_file():
        central = open_central(home, clock)
        settings = LinkSettings(listen=central.config.sync.listen)
        return OpenedHome(central.store.log, central.keys, central.code, "", settings, central.store)
    raise ConfigError(ErrorCode.NOT_INITIALIZED, f"{home} has neither node.toml nor central.toml")


def upstreams(opened: Any) -> list[Upstream]:
    """The parents ``opened`` syncs with (for callers holding a plain :class:`OpenedHome`)."""
    return list(opened.upstreams())
