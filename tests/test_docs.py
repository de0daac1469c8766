"""Documentation that cannot drift: every CLI command and config key is documented."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from central import config as central_config
from central.department import config as department_config
from node import config as node_config
from tongban.cli import main

DOCS = Path(__file__).parents[1] / "docs"


def commands(group: click.Group, prefix: str = "tongban") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found.extend(commands(command, path))
        else:
            found.append((path, command))
    return found


def test_every_cli_command_is_documented_with_help() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    listed = commands(main)
    assert len(listed) >= 10
    for path, command in listed:
        assert f"`{path} " in text or f"`{path}`" in text, f"{path} is not in docs/cli.md"
        assert command.help, f"{path} has no help text"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.opts[0] in text or param.help, f"{path} {param.opts[0]} undocumented"


def test_every_config_key_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for layout in (node_config.LAYOUT, central_config.LAYOUT, department_config.LAYOUT):
        for section, cls in layout.items():
            for field in dataclasses.fields(cls):
                assert f"`{section}.{field.name}`" in text, f"{section}.{field.name} is not documented"


def test_every_error_code_has_both_texts() -> None:
    from core.errors import ErrorCode, error_text

    for code in ErrorCode:
        assert error_text(code, "zh") and error_text(code, "en")
