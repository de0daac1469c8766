"""The screens name case states, steps, delivery methods and ratings with core's one table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from central.web.i18n import TEXTS as CENTRAL
from core.cases import DELIVERY_LABELS, EVENT_LABELS, RATING_LABELS, STATE_LABELS, Event, State
from node.web.i18n import TEXTS as NODE
from web.i18n import Texts

TABLES = {"state": STATE_LABELS, "event": EVENT_LABELS, "delivery": DELIVERY_LABELS, "rating": RATING_LABELS}


def both(texts: Texts, key: str) -> tuple[str, str]:
    return texts.t(key, "zh"), texts.t(key, "en")


@pytest.mark.parametrize("prefix", sorted(TABLES))
def test_the_clerk_screens_use_the_core_labels(prefix: str) -> None:
    table: Mapping[Any, tuple[str, str]] = TABLES[prefix]
    for key, label in table.items():
        assert both(NODE, f"{prefix}.{key.value}") == label


def test_the_dashboard_uses_the_core_labels() -> None:
    for state, label in STATE_LABELS.items():
        assert both(CENTRAL, f"case.{state.value}") == label
    for rating, label in RATING_LABELS.items():
        assert both(CENTRAL, f"rating.{rating.value}") == label


def test_the_supplement_step_reads_the_same_everywhere() -> None:
    assert NODE.t("event.supply", "zh") == Event.SUPPLY.zh == "补正材料已收"
    assert NODE.t("state.supplement", "zh") == CENTRAL.t("case.supplement", "zh") == State.SUPPLEMENT.zh
