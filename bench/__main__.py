"""``python -m bench`` (``make bench``): run every benchmark, write bench/results/."""

from __future__ import annotations

import json
import platform
from pathlib import Path

from bench import intake, record_log, sync

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    results = {"record_log": record_log.run(), "intake": intake.run(), "sync": sync.run()}
    machine = {"python": platform.python_version(), "machine": platform.machine(), "cpus": _cpus()}
    (RESULTS / "latest.json").write_text(json.dumps({"machine": machine, **results}, indent=2) + "\n")
    lines = ["| benchmark | figure | value | baseline | ratio |", "|---|---|---|---|---|"]
    for name, figures in results.items():
        for figure in figures["figures"]:
            lines.append(
                f"| {name} | {figure['name']} | {figure['value']:.0f} {figure['unit']} |"
                f" {figure['baseline']:.0f} {figure['unit']} | {figure['ratio']:.2f} |"
            )
    table = "\n".join(lines) + "\n"
    (RESULTS / "summary.md").write_text(table)
    print(table)


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
