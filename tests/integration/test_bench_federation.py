"""The federation benchmark's harness at a tiny size, so a change that breaks it is caught
here: three cities of one village each, agreed both ways, their centrals as processes, two
cross-city and two same-city cases per village after the links were down, the revocation of
one agreement, and every figure with its target (or its stated absence of one)."""

from __future__ import annotations

import pytest

from bench import federation

pytestmark = pytest.mark.slow


def test_a_tiny_alliance_gives_every_figure_with_its_target() -> None:
    report = federation.run(cities=3, villages=1, cases=2)

    assert report["cities"] == 3 and report["items_per_city"] == 119
    assert report["cross_certifications"] == 6 and report["releases_mirrored"] == 6
    assert report["cross_city_cases"] == 6 and report["same_city_cases"] == 6
    assert report["agent_errors"] == [], report["agent_errors"]
    # Each town approved its own villages' cases and the other cities' that crossed to it.
    assert report["approved_by_towns"] == 12, report
    by_name = {f["name"].split(",")[0]: f for f in report["figures"]}
    decisions = by_name["every cross-city case's decision back at its window after a week cut off"]
    assert decisions["target"] == "< 60 s" and decisions["unit"] == "s"
    assert decisions["note"] == "6/6 cross-city, 6/6 same-city back", decisions
    assert 0 < decisions["baseline"] < decisions["value"] < 60
    assert decisions["ratio"] == pytest.approx(decisions["value"] / decisions["baseline"])
    revocation = by_name["an agreement's revocation at every node of both cities"]
    assert revocation["target"] == "< 10 s" and revocation["note"] == "6/6 nodes hold it", revocation
    assert 0 < revocation["baseline"] <= revocation["value"] < 10
    memory = [f for f in report["figures"] if f["name"].startswith("memory per central")]
    assert len(memory) == 2 and all(20 < f["value"] < 1000 and f["unit"] == "MB" for f in memory)
    assert sorted(report["central_peak_rss_mb"]) == ["cn-330101", "cn-330102", "cn-330103"]
    assert report["targets_met"] == {"decisions_back": True, "revocation_both_cities": True}
