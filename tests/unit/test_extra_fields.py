"""An item's extra fields at intake: each value checked by its kind, refusals naming the field."""

from __future__ import annotations

from datetime import date

import pytest

from core.catalog import ExtraField
from core.errors import ErrorCode, InputError
from core.extra_fields import check_extra
from tests.unit.test_catalog import make_item

TODAY = date(2026, 12, 7)
ITEM = make_item(
    "MZ-0001",
    name="最低生活保障申请",
    fields=(
        ExtraField("household_size", "共同生活家庭成员人数", "int", True, 20),
        ExtraField("child_name", "新生儿姓名", "text", False, 4),
        ExtraField("child_birth", "新生儿出生日期", "date", False),
    ),
)


def refusal(values: dict[str, object]) -> InputError:
    with pytest.raises(InputError) as err:
        check_extra(ITEM, values, TODAY)
    return err.value


def test_values_are_kept_in_the_items_order_and_empty_optional_ones_left_out() -> None:
    got = check_extra(ITEM, {"child_birth": "2026-11-30", "household_size": " ３ ", "child_name": ""}, TODAY)
    assert got == (("household_size", "3"), ("child_birth", "2026-11-30"))


def test_a_required_field_left_empty_is_refused_on_that_field() -> None:
    err = refusal({"household_size": "  "})
    assert err.code is ErrorCode.FIELD_REQUIRED and err.field == "extra_household_size"
    assert "共同生活家庭成员人数" in err.render("zh")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"household_size": "三"}, "extra_household_size"),
        ({"household_size": "21"}, "extra_household_size"),  # over its max
        ({"household_size": "-1"}, "extra_household_size"),
        ({"household_size": "2", "child_name": "王小明明明"}, "extra_child_name"),  # over 4 characters
        ({"household_size": "2", "child_birth": "2026-02-30"}, "extra_child_birth"),
        ({"household_size": "2", "child_name": "王\x1b"}, "extra_child_name"),
        ({"household_size": "2", "pets": "1"}, "extra_pets"),  # a field the item does not have
        ({"household_size": 2}, "extra_household_size"),  # not text
    ],
)
def test_a_value_not_of_its_kind_is_refused_on_its_field(values: dict[str, object], field: str) -> None:
    err = refusal(values)
    assert err.code is ErrorCode.FIELD_INVALID and err.field == field
