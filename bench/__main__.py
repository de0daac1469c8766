"""``python -m bench`` (``make bench``): run every benchmark, write bench/results/.

``bench/results/latest.json`` holds every figure with the machine it was taken on;
``bench/results/summary.md`` the same as a Markdown table (what the README shows).
``python -m bench city`` (or any names) runs only those benchmarks and keeps the other
benchmarks' last results in both files.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import city, departments, federation, files, intake, record_log, sync

RESULTS = Path(__file__).parent / "results"
BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {
    "record_log": record_log.run,
    "intake": intake.run,
    "sync": sync.run,
    "city": city.run,
    "departments": departments.run,
    "files": files.run,
    "federation": federation.run,
}


def main(names: list[str]) -> None:
    chosen = names or list(BENCHMARKS)
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark(s) {', '.join(unknown)}; there are {', '.join(BENCHMARKS)}")
    RESULTS.mkdir(exist_ok=True)
    results = _previous(chosen) if names else {}
    for name in chosen:
        results[name] = BENCHMARKS[name]()
    machine = describe_machine()
    (RESULTS / "latest.json").write_text(
        json.dumps({"machine": machine, **results}, indent=2, ensure_ascii=False) + "\n"
    )
    table = summary(machine, results)
    (RESULTS / "summary.md").write_text(table)
    print(table)


def _previous(chosen: list[str]) -> dict[str, dict[str, Any]]:
    """The last results of the benchmarks not run now, in the usual order."""
    try:
        last = json.loads((RESULTS / "latest.json").read_text())
    except (OSError, ValueError):
        return {}
    return {n: last[n] for n in BENCHMARKS if n in last and n not in chosen and isinstance(last[n], dict)}


def describe_machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": model,
        "cpus": os.cpu_count() or 0,
        "memory_gib": round(memory, 1),
        "date": time.strftime("%Y-%m-%d"),
    }


def summary(machine: dict[str, Any], results: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"Taken {machine['date']} on {machine['cpus']} × {machine['cpu'] or machine['machine']},"
        f" {machine['memory_gib']} GiB, Python {machine['python']}.",
        "",
        "| benchmark | figure | value | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|---|",
    ]
    for name, figures in results.items():
        for figure in figures["figures"]:
            unit = figure["unit"]
            baseline = "" if figure["baseline"] is None else f"{_number(figure['baseline'])} {unit}"
            value = "not measured" if figure["value"] is None else f"{_number(figure['value'])} {unit}"
            ratio = "" if figure["ratio"] is None else f"{figure['ratio']:.2f}"
            lines.append(
                f"| {name} | {figure['name']} | {value} | {baseline} | {ratio} | {figure.get('target', '')} |"
            )
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"


if __name__ == "__main__":
    main(sys.argv[1:])
