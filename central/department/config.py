"""A department's configuration file, ``department.toml``, parsed once into frozen sections.

Every key is documented in docs/configuration.md (a test checks that). Paths are relative
to the department's directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from central.department.contract import broker_user
from core.config import parse_toml, render_toml, sections
from core.departments import check_department_code
from core.errors import ConfigError, ErrorCode, TongbanError

CONFIG_FILE = "department.toml"


@dataclass(frozen=True)
class DepartmentSection:
    """[department]: who this department is."""

    code: str
    name: str
    parent: str


@dataclass(frozen=True)
class StoreSection:
    """[store]: where the department keeps its data."""

    database: str = "department.db"
    keys: str = "keys/department.key"


@dataclass(frozen=True)
class WebSection:
    """[web]: the department desk."""

    listen: str = "127.0.0.1:8500"


@dataclass(frozen=True)
class AmqpSection:
    """[amqp]: the broker central publishes the department's events on."""

    uri: str = ""  # amqp://USER:PASSWORD@HOST:PORT/ ; empty: the desk runs without a link
    ca_file: str = ""  # a CA certificate: the connection is TLS and the broker's certificate is checked

    @property
    def user(self) -> str:
        """The broker user the URI logs in as: what the broker validates ``user_id`` against."""
        return broker_user(self.uri)


@dataclass(frozen=True)
class DepartmentConfig:
    department: DepartmentSection
    store: StoreSection
    home: Path
    web: WebSection = WebSection()
    amqp: AmqpSection = AmqpSection()

    @property
    def code(self) -> str:
        return self.department.code

    @property
    def database_path(self) -> Path:
        return self.home / self.store.database

    @property
    def key_path(self) -> Path:
        return self.home / self.store.keys


LAYOUT: dict[str, type] = {
    "department": DepartmentSection,
    "store": StoreSection,
    "web": WebSection,
    "amqp": AmqpSection,
}


def load(home: Path) -> DepartmentConfig:
    """Read ``home/department.toml``; a directory without one is ``E_NOT_INITIALIZED``."""
    path = home / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(ErrorCode.NOT_INITIALIZED, f"{home} has no {CONFIG_FILE}")
    parsed = sections(parse_toml(path.read_text(encoding="utf-8"), str(path)), LAYOUT, str(path))
    config = DepartmentConfig(
        department=parsed["department"],
        store=parsed["store"],
        home=home,
        web=parsed["web"],
        amqp=parsed["amqp"],
    )
    try:
        check_department_code(config.code)
    except TongbanError as exc:
        raise ConfigError(detail=f"{path}: {exc.render('en')}") from exc
    if config.department.parent != config.code[:6]:
        raise ConfigError(detail=f"{path}: department.parent must be {config.code[:6]}")
    if config.amqp.uri and not config.amqp.user:
        raise ConfigError(detail=f"{path}: amqp.uri must name the department's broker user")
    return config


def render(department: DepartmentSection, amqp: AmqpSection | None = None) -> str:
    store = StoreSection()
    values: dict[str, dict[str, str | int | bool]] = {
        "department": {"code": department.code, "name": department.name, "parent": department.parent},
        "store": {"database": store.database, "keys": store.keys},
    }
    if amqp is not None and amqp.uri:
        values["amqp"] = {"uri": amqp.uri, **({"ca_file": amqp.ca_file} if amqp.ca_file else {})}
    return "# Tongban department configuration (docs/configuration.md)\n" + render_toml(values)
