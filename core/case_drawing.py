"""The case lifecycle's drawings for docs/case-lifecycle.md: the transition table of
:mod:`core.cases` as Markdown and as a Graphviz digraph (tests/unit/test_cases.py checks
that the page holds both, so the page cannot drift from the table)."""

from __future__ import annotations

from core.cases import CASE_MODES, TERMINAL, TRANSITIONS, Event, State
from core.catalog import Mode


def _rows() -> list[tuple[State, Event, str, State]]:
    rows: list[tuple[State, Event, str, State]] = []
    for (state, event), targets in TRANSITIONS.items():
        by_target: dict[State, list[Mode]] = {}
        for mode in CASE_MODES:
            if mode in targets:
                by_target.setdefault(targets[mode], []).append(mode)
        for target, modes in by_target.items():
            rows.append((state, event, ", ".join(m.value for m in modes), target))
    return rows


def render_table() -> str:
    """The transition table as Markdown, one row per (state, event, modes, next state)."""
    lines = [
        "| from | event | case modes | to |",
        "|---|---|---|---|",
    ]
    for state, event, modes, target in _rows():
        lines.append(
            f"| {state.value} {state.zh} | {event.value} {event.zh} | {modes} | {target.value} {target.zh} |"
        )
    return "\n".join(lines) + "\n"


def render_dot() -> str:
    """The transition table as a Graphviz digraph (one edge per table row)."""
    lines = ["digraph case_lifecycle {", "  rankdir=LR;", '  node [shape=box, fontname="sans-serif"];']
    for state in State:
        shape = ", peripheries=2" if state in TERMINAL else ""
        lines.append(f'  {state.value} [label="{state.zh}\\n{state.value}"{shape}];')
    for state, event, modes, target in _rows():
        style = ", style=dashed" if state is target else ""
        lines.append(f'  {state.value} -> {target.value} [label="{event.value} ({modes})"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"
