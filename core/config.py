"""Configuration parsed once into frozen section objects.

Node and central configuration files are TOML. Each section maps onto a frozen dataclass;
every field of the dataclass is a key, its default (if any) makes the key optional, and any
key or section the dataclass does not declare is an error that names it — a typo never
silently falls back to a default. Nothing below the entry point reads files or the
environment: callers pass the text in.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from typing import Any, TypeVar, get_type_hints

from core.errors import ConfigError

T = TypeVar("T")


def parse_toml(text: str, source: str = "config") -> dict[str, Any]:
    """Parse TOML text, translating syntax errors into ``E_CONFIG``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(detail=f"{source}: {exc}") from exc


def section(cls: type[T], data: Mapping[str, Any], path: str) -> T:
    """Build the frozen dataclass ``cls`` from the table ``data`` found at ``path``."""
    if not isinstance(data, Mapping):
        raise ConfigError(detail=f"[{path}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(detail=f"unknown key {path}.{unknown[0]}")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(detail=f"missing key {path}.{name}")
            continue
        value = data[name]
        expected = hints[name]
        if expected in (str, int, bool) and (type(value) is not expected):
            raise ConfigError(detail=f"{path}.{name} must be {expected.__name__}")
        values[name] = value
    return cls(**values)


def sections(data: Mapping[str, Any], layout: Mapping[str, type[Any]], source: str) -> dict[str, Any]:
    """Check that ``data`` has exactly the sections of ``layout`` and build each one."""
    unknown = sorted(set(data) - set(layout))
    if unknown:
        raise ConfigError(detail=f"{source}: unknown section [{unknown[0]}]")
    return {name: section(cls, data.get(name, {}), name) for name, cls in layout.items()}


def render_toml(values: Mapping[str, Mapping[str, str | int | bool]]) -> str:
    """Write a simple two-level TOML document (strings, ints, bools only)."""
    lines: list[str] = []
    for name, table in values.items():
        lines.append(f"[{name}]")
        for key, value in table.items():
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, int):
                lines.append(f"{key} = {value}")
            else:
                escaped = value.replace("\\", "\\\\").replace('"', '\\"')
                lines.append(f'{key} = "{escaped}"')
        lines.append("")
    return "\n".join(lines)
