"""What the simulated city is: its org tree, its month, and the people who walk in.

The tree is Haining's (``central/demo/org-tree.yaml``): the city, its 12 towns and streets,
and the villages and communities listed there, filled up to 19 per town (228 in all, the
seeds' "1+12+228") with simulated ones whose codes follow the statistical pattern and
whose names say they are simulated.

The month's volume comes from the seeds: Haining's 村社便民服务中心 handled 97,675 cases in
the first half of 2020, about 71 per village per month (:data:`CASES_PER_VILLAGE_MONTH`).
Each working day of the month a village takes in about its share, at random hours of the
working day; direct cases are decided and delivered at once, proxy cases go to the town.
Everything random comes from one seeded generator: two runs with the same options take
in the same cases.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from core.calendar import WorkCalendar
from core.clock import CHINA
from core.documents import mod11_2_check_char
from tongban.demo import demo_file

CITY_CODE = "330481"
TOWNS = 12
VILLAGES_PER_TOWN = 19
CASES_PER_VILLAGE_MONTH = round(97_675 / 6 / 228)
"""Seeds: 97,675 village-tier cases in Haining, January to June 2020, over 228 villages."""

MONTH_START = dt.date(2026, 11, 2)
"""A Monday; the month runs to the last day of November, 21 working days."""
MONTH_END = dt.date(2026, 11, 30)
RECONNECT = dt.datetime(2026, 12, 1, 8, 30, tzinfo=CHINA)
"""When every link comes back (the simulated time the convergence starts at)."""
SETUP = dt.datetime(2026, 10, 31, 9, 0, tzinfo=CHINA)
RELEASE_DAY = dt.date(2026, 11, 13)
REVOKE_DAY = dt.date(2026, 11, 16)

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余"
    "于杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_GIVEN = (
    "秀英桂兰玉兰建华建国志强国强丽娟海燕秀兰春梅晓明建平文华德明美玲红梅建军伟东俊杰"
    "家豪雨轩梓涵子轩浩然欣怡思远静怡佳琪志明丽华金凤"
)


@dataclass(frozen=True)
class Center:
    code: str
    name: str
    tier: str  # "town" or "village"
    parent: str


@dataclass(frozen=True)
class CityPlan:
    towns: tuple[Center, ...]
    villages: tuple[Center, ...]
    cases_per_month: int
    seed: int
    central_name: str = "海宁市"

    @property
    def nodes(self) -> tuple[Center, ...]:
        return (*self.towns, *self.villages)

    def villages_of(self, town: str) -> list[Center]:
        return [v for v in self.villages if v.parent == town]


def city_plan(
    towns: int = TOWNS,
    villages_per_town: int = VILLAGES_PER_TOWN,
    cases_per_month: int = CASES_PER_VILLAGE_MONTH,
    seed: int = 20261201,
) -> CityPlan:
    """The first ``towns`` towns of the demo tree, each with ``villages_per_town`` villages."""
    tree = demo_file("org-tree.yaml")
    listed = [n for n in tree["nodes"] if n["tier"] == "town"][:towns]
    chosen_towns = tuple(Center(n["code"], n["name"], "town", CITY_CODE) for n in listed)
    villages: list[Center] = []
    for town in chosen_towns:
        known = [n for n in tree["nodes"] if n["tier"] == "village" and n["parent"] == town.code]
        taken = {n["code"] for n in known}
        mine = [Center(n["code"], n["name"], "village", town.code) for n in known[:villages_per_town]]
        number = 201
        while len(mine) < villages_per_town:
            code = f"{town.code}{number:03d}"
            if code not in taken:
                mine.append(Center(code, f"{town.name}模拟村社{len(mine) + 1:02d}", "village", town.code))
            number += 1
        villages.extend(mine)
    return CityPlan(chosen_towns, tuple(villages), cases_per_month, seed)


# -- the month ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Walkin:
    """One walk-in: when, which of the village's items (by index), and who."""

    at: int
    pick: float  # in [0, 1): which item, from the village's list of items it may take in
    name: str
    doc_no: str
    phone: str


@dataclass
class VillageMonth:
    code: str
    walkins: list[Walkin] = field(default_factory=list)


def working_days(start: dt.date = MONTH_START, end: dt.date = MONTH_END) -> list[dt.date]:
    calendar = WorkCalendar.builtin()
    day, days = start, []
    while day <= end:
        if calendar.is_working_day(day):
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def month_for(plan: CityPlan, village: str) -> VillageMonth:
    """The walk-ins of ``village`` over the month (seeded by the plan and the village)."""
    rng = random.Random(f"{plan.seed}:{village}")
    days = working_days()
    month = VillageMonth(village)
    for _ in range(plan.cases_per_month):
        day = rng.choice(days)
        opens = dt.datetime(day.year, day.month, day.day, 8, 30, tzinfo=CHINA)
        at = int(opens.timestamp()) + rng.randrange(0, 8 * 3600)
        month.walkins.append(Walkin(at, rng.random(), _name(rng), _resident_id(rng), _phone(rng)))
    month.walkins.sort(key=lambda w: w.at)
    return month


def _name(rng: random.Random) -> str:
    given = _GIVEN[2 * rng.randrange(len(_GIVEN) // 2) :][:2]
    return rng.choice(_SURNAMES) + (given if rng.random() < 0.8 else given[0])


def _resident_id(rng: random.Random) -> str:
    born = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 66))
    body = f"{CITY_CODE}{born:%Y%m%d}{rng.randrange(0, 1000):03d}"
    return body + mod11_2_check_char(body)


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(0, 10**9):09d}"


def epoch(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def at_nine(day: dt.date) -> int:
    return epoch(dt.datetime(day.year, day.month, day.day, 9, 0, tzinfo=CHINA))


def chunks(items: list[Center], size: int) -> Iterator[list[Center]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
