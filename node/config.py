"""The node's configuration file, ``node.toml``, parsed once into frozen sections.

Every key is documented in docs/configuration.md (a test checks that). Paths are
relative to the node's directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.admin import Tier, expected_parent, parse_tier, validate_node_code
from core.config import parse_toml, render_toml, sections
from core.errors import ConfigError, ErrorCode, InputError, TongbanError
from core.intake import refuse_invisible

CONFIG_FILE = "node.toml"


@dataclass(frozen=True)
class NodeSection:
    """[node]: who this node is."""

    code: str
    tier: str
    name: str
    parent: str
    phone: str = ""  # the center's phone, printed on the papers a resident takes home

    def __post_init__(self) -> None:
        refuse_invisible("center name", self.name)  # shown on every screen: nothing invisible in it
        refuse_invisible("center name", self.phone)


@dataclass(frozen=True)
class StoreSection:
    """[store]: where the node keeps its data."""

    database: str = "node.db"
    keys: str = "keys/node.key"


@dataclass(frozen=True)
class WebSection:
    """[web]: the clerk web service (pages and /api/v1)."""

    listen: str = "127.0.0.1:8400"
    secure_cookies: bool = False  # behind TLS: cookies only over HTTPS
    hsts: bool = False  # behind TLS: Strict-Transport-Security on every response
    forwarded_for: bool = False  # behind a proxy: the client's address from X-Forwarded-For


@dataclass(frozen=True)
class SyncSection:
    """[sync]: the node's links (docs/sync-protocol.md); every key is optional."""

    parent: str = ""  # the parent's sync endpoint, tcp://host:port
    fallback: str = ""  # central's endpoint, tried when the parent cannot be reached
    direct_to_central: bool = False  # sync with central only, never with the parent
    listen: str = ""  # a town's own endpoint for its villages, tcp://host:port
    interval: int = 60  # seconds between the agent's sessions
    files_up_kbit: int = 0  # cap on the scanned pages the node uploads, kbit/s (0: no cap)


@dataclass(frozen=True)
class ReaderSection:
    """[reader]: the ID card reader of the window or kiosk PC (:mod:`node.card_reader`)."""

    kind: str = "none"  # none, or simulated (tests, the demo): a vendor's reader plugs in here
    card_file: str = "reader-card.json"  # the simulated reader's card

    def __post_init__(self) -> None:
        if self.kind not in READER_KINDS:
            raise ConfigError(
                ErrorCode.CONFIG, f"reader.kind: {self.kind!r} is not one of {', '.join(READER_KINDS)}"
            )


@dataclass(frozen=True)
class SmsSection:
    """[sms]: telling residents by SMS (:mod:`node.sms`)."""

    gateway: str = "none"  # none, or log: each message is a line of log_file (the demo's gateway)
    log_file: str = "sms.log"

    def __post_init__(self) -> None:
        if self.gateway not in SMS_GATEWAYS:
            raise ConfigError(
                ErrorCode.CONFIG, f"sms.gateway: {self.gateway!r} is not one of {', '.join(SMS_GATEWAYS)}"
            )


@dataclass(frozen=True)
class FilesSection:
    """[files]: the scanned pages of the cases (:mod:`node.files`)."""

    budget_mb: int = 2048  # disk the file store may use; a warning at 90 %, E_FILE_BUDGET past it
    keep_days: int = 30  # a village removes a file central holds this many days after its case closed
    housekeep_seconds: int = 600  # how often the web service sweeps the file store (node.files)

    def __post_init__(self) -> None:
        if self.budget_mb < 1:
            raise ConfigError(ErrorCode.CONFIG, f"files.budget_mb: {self.budget_mb} is not a positive size")
        if self.keep_days < 0:
            raise ConfigError(ErrorCode.CONFIG, f"files.keep_days: {self.keep_days} is negative")
        if self.housekeep_seconds < 1:
            raise ConfigError(
                ErrorCode.CONFIG, f"files.housekeep_seconds: {self.housekeep_seconds} is not a positive time"
            )


READER_KINDS = ("none", "simulated")
SMS_GATEWAYS = ("none", "log")


@dataclass(frozen=True)
class NodeConfig:
    node: NodeSection
    store: StoreSection
    home: Path
    web: WebSection = WebSection()
    sync: SyncSection = SyncSection()
    reader: ReaderSection = ReaderSection()
    sms: SmsSection = SmsSection()
    files: FilesSection = FilesSection()

    @property
    def tier(self) -> Tier:
        return parse_tier(self.node.tier)

    @property
    def database_path(self) -> Path:
        return self.home / self.store.database

    @property
    def key_path(self) -> Path:
        return self.home / self.store.keys


LAYOUT: dict[str, type] = {
    "node": NodeSection,
    "store": StoreSection,
    "web": WebSection,
    "sync": SyncSection,
    "reader": ReaderSection,
    "sms": SmsSection,
    "files": FilesSection,
}


def load(home: Path) -> NodeConfig:
    """Read ``home/node.toml``; a directory without one is ``E_NOT_INITIALIZED``."""
    path = home / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(ErrorCode.NOT_INITIALIZED, f"{home} has no {CONFIG_FILE}")
    try:
        parsed = sections(parse_toml(path.read_text(encoding="utf-8"), str(path)), LAYOUT, str(path))
        config = NodeConfig(
            node=parsed["node"],
            store=parsed["store"],
            home=home,
            web=parsed["web"],
            sync=parsed["sync"],
            reader=parsed["reader"],
            sms=parsed["sms"],
            files=parsed["files"],
        )
        tier = parse_tier(config.node.tier)
        if tier in (Tier.CENTRAL, Tier.DEPARTMENT):
            raise InputError(ErrorCode.TIER_MISMATCH, f"a node is not of the tier {tier.value}")
        validate_node_code(config.node.code, tier)
        if expected_parent(config.node.code, tier) != config.node.parent:
            raise InputError(ErrorCode.TIER_MISMATCH, f"parent {config.node.parent}")
    except ConfigError:
        raise
    except TongbanError as exc:
        raise ConfigError(detail=f"{path}: {exc.render('en')}") from exc
    return config


def render(node: NodeSection, store: StoreSection | None = None) -> str:
    store = store or StoreSection()
    return "# Tongban node configuration (docs/configuration.md)\n" + render_toml(
        {
            "node": {"code": node.code, "tier": node.tier, "name": node.name, "parent": node.parent},
            "store": {"database": store.database, "keys": store.keys},
        }
    )
