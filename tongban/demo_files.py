"""What the demo writes: sections of its stores' configuration files, and its supervisord.conf.

:func:`set_section` replaces one table of a ``node.toml``, ``central.toml`` or
``department.toml`` (the demo's ``[sync]`` links on loopback, its ``[amqp]`` broker URIs);
:func:`supervisor_conf` writes one program per :class:`Program`, each with its own log.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def set_sync_section(config_file: Path, values: dict[str, Any]) -> None:
    """Replace (or add) the ``[sync]`` table of a ``node.toml`` or ``central.toml``."""
    set_section(config_file, "sync", values)


DEMO_CARD = {
    "name": "沈晓燕",
    "number": "330481198806152429",
    "sex": "女",
    "nation": "汉",
    "birth": "1988-06-15",
    "address": "浙江省海宁市许村镇荡湾村",
    "issuer": "海宁市公安局",
    "valid": "2016.03.01-2036.03.01",
}
"""The card on each demo window's simulated reader: 读身份证 on the intake form fills it in."""


def equip_window(node_dir: Path) -> None:
    """A demo window's devices: SMS to residents written to ``sms.log`` (no gateway is
    contracted), and a simulated ID card reader with :data:`DEMO_CARD` on it."""
    set_section(node_dir / "node.toml", "sms", {"gateway": "log"})
    set_section(node_dir / "node.toml", "reader", {"kind": "simulated"})
    card = node_dir / "reader-card.json"
    if not card.exists():
        card.write_text(json.dumps(DEMO_CARD, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def set_section(config_file: Path, section: str, values: dict[str, Any]) -> None:
    """Replace (or add) the table ``[section]`` of a configuration file."""
    kept: list[str] = []
    skipping = False
    for line in config_file.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("["):
            skipping = line.strip() == f"[{section}]"
        if not skipping:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    table = ["", f"[{section}]", *(f"{key} = {_toml(value)}" for key, value in values.items())]
    config_file.write_text("\n".join(kept + table) + "\n", encoding="utf-8")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value) + '"'  # endpoints and URIs: no quotes or backslashes in them


@dataclass(frozen=True)
class Program:
    """One supervisord program of the demo."""

    name: str
    command: str
    log: Path
    environment: dict[str, str] = field(default_factory=dict)
    stopsignal: str = "INT"
    priority: int = 999


def tongban_program(name: str, home: Path, options: str, log: Path) -> Program:
    """A program running ``python -m tongban.run HOME OPTIONS`` (a node's, central's, a department's)."""
    return Program(name, f"{sys.executable} -m tongban.run {home}{options}", log, {"MALLOC_ARENA_MAX": "2"})


def supervisor_conf(home: Path, programs: list[Program]) -> str:
    """supervisord.conf for the demo: the programs, a unix socket for control."""
    home = home.resolve()
    lines = [
        "[unix_http_server]",
        f"file={home}/supervisor.sock",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={home}/supervisord.log",
        f"pidfile={home}/supervisord.pid",
        f"directory={home}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{home}/supervisor.sock",
        "",
    ]
    for program in programs:
        environment = ",".join(f'{key}="{value}"' for key, value in program.environment.items())
        lines += [
            f"[program:{program.name}]",
            f"command={program.command}",
            *([f"environment={environment}"] if environment else []),
            f"stopsignal={program.stopsignal}",
            "stopwaitsecs=30",
            "stopasgroup=true",
            "killasgroup=true",
            # a refused start (exit 3: a damaged store) ends FATAL or EXITED, never a loop
            "autorestart=unexpected",
            "exitcodes=0,3",
            "startsecs=5",
            "startretries=3",
            f"priority={program.priority}",
            f"stdout_logfile={program.log}",
            "redirect_stderr=true",
            "",
        ]
    return "\n".join(lines)
