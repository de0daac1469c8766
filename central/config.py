"""Central's configuration file, ``central.toml``, parsed once into frozen sections.

Every key is documented in docs/configuration.md (a test checks that). Paths are
relative to central's directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.admin import Tier, validate_node_code
from core.config import parse_toml, render_toml, sections
from core.errors import ConfigError, ErrorCode, TongbanError
from core.intake import refuse_invisible

CONFIG_FILE = "central.toml"


@dataclass(frozen=True)
class CentralSection:
    """[central]: the city authority's identity and network name."""

    code: str
    name: str
    net: str

    def __post_init__(self) -> None:
        refuse_invisible("center name", self.name)  # shown on every screen: nothing invisible in it


@dataclass(frozen=True)
class StoreSection:
    """[store]: where central keeps its data."""

    database: str = "central.db"
    keys: str = "keys/central.key"
    bundles: str = "bundles"


@dataclass(frozen=True)
class SyncSection:
    """[sync]: central's sync endpoint for towns and villages (docs/sync-protocol.md)."""

    listen: str = ""  # tcp://host:port


@dataclass(frozen=True)
class PeersSection:
    """[peers]: the link with other cities' centrals (docs/federation.md, section 8)."""

    listen: str = ""  # tcp://host:port the peer centrals push to; unset: no peer link runs
    interval_seconds: int = 5  # how often central pushes what it owes each linked peer


@dataclass(frozen=True)
class WebSection:
    """[web]: the operator web service (catalog, delegation, dashboard, audit)."""

    listen: str = "127.0.0.1:8400"
    secure_cookies: bool = False  # behind TLS: cookies only over HTTPS
    hsts: bool = False  # behind TLS: Strict-Transport-Security on every response
    forwarded_for: bool = False  # behind a proxy: the client's address from X-Forwarded-For


@dataclass(frozen=True)
class RecheckSection:
    """[recheck]: central's re-check of intakes (:mod:`central.recheck`)."""

    max_offline_days: int = 30  # a record signed longer before its first receipt is flagged


@dataclass(frozen=True)
class AmqpSection:
    """[amqp]: the broker central publishes departments' events on (docs/departments.md).

    Without a ``uri`` nothing needs a broker: departments' cases wait at central.
    """

    uri: str = ""  # amqp://USER:PASSWORD@HOST:PORT/
    ca_file: str = ""  # a CA certificate: the connection is TLS and the broker's certificate is checked
    delivery_limit: int = 5  # deliveries of one event before the broker dead-letters it


@dataclass(frozen=True)
class CentralConfig:
    central: CentralSection
    store: StoreSection
    home: Path
    sync: SyncSection = SyncSection()
    web: WebSection = WebSection()
    recheck: RecheckSection = RecheckSection()
    amqp: AmqpSection = AmqpSection()
    peers: PeersSection = PeersSection()

    @property
    def database_path(self) -> Path:
        return self.home / self.store.database

    @property
    def key_path(self) -> Path:
        return self.home / self.store.keys

    @property
    def bundle_dir(self) -> Path:
        return self.home / self.store.bundles


LAYOUT: dict[str, type] = {
    "central": CentralSection,
    "store": StoreSection,
    "sync": SyncSection,
    "web": WebSection,
    "recheck": RecheckSection,
    "amqp": AmqpSection,
    "peers": PeersSection,
}


def load(home: Path) -> CentralConfig:
    """Read ``home/central.toml``; a directory without one is ``E_NOT_INITIALIZED``."""
    path = home / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(ErrorCode.NOT_INITIALIZED, f"{home} has no {CONFIG_FILE}")
    try:
        parsed = sections(parse_toml(path.read_text(encoding="utf-8"), str(path)), LAYOUT, str(path))
        config = CentralConfig(
            central=parsed["central"],
            store=parsed["store"],
            home=home,
            sync=parsed["sync"],
            web=parsed["web"],
            recheck=parsed["recheck"],
            amqp=parsed["amqp"],
            peers=parsed["peers"],
        )
        validate_node_code(config.central.code, Tier.CENTRAL)
    except ConfigError:
        raise
    except TongbanError as exc:
        raise ConfigError(detail=f"{path}: {exc.render('en')}") from exc
    if config.recheck.max_offline_days < 1:
        raise ConfigError(detail=f"{path}: recheck.max_offline_days must be 1 or more")
    if config.amqp.delivery_limit < 1:
        raise ConfigError(detail=f"{path}: amqp.delivery_limit must be at least 1")
    if config.peers.interval_seconds < 1:
        raise ConfigError(detail=f"{path}: peers.interval_seconds must be at least 1")
    if config.peers.listen and not config.peers.listen.startswith("tcp://"):
        raise ConfigError(detail=f"{path}: peers.listen must be tcp://HOST:PORT")
    return config


def render(central: CentralSection) -> str:
    store = StoreSection()
    return "# Tongban central configuration (docs/configuration.md)\n" + render_toml(
        {
            "central": {"code": central.code, "name": central.name, "net": central.net},
            "store": {"database": store.database, "keys": store.keys, "bundles": store.bundles},
        }
    )
