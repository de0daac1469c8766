"""The files benchmark's harness at a tiny size, so a change that breaks it is caught here:
two cases on an unshaped link between two namespaces, the bare TCP baseline beside them,
and the link's shaping, loss rules and cut, with nothing left behind.

Needs root, iproute2 and nftables, like the other namespace tests; without them it fails.
"""

from __future__ import annotations

import os
from datetime import date

import pytest

from bench import files, netlink
from bench.filesday import resident_id
from core.documents import DocType, validate_document

pytestmark = pytest.mark.slow


def ours() -> set[str]:
    return {n for n in netlink.namespaces() if n.startswith(f"{netlink.PREFIX}{os.getpid()}")}


def test_the_day_at_tiny_size_gives_every_figure_with_its_target() -> None:
    report = files.run(cases=2, scans=2, conditions=("clean",), shaped=False, cut=False, runs=1)

    assert report["files"] == 4 and 4 * 150_000 < report["file_bytes"] < 4 * 400_000, report
    by_name = {f["name"]: f for f in report["figures"]}
    bare = by_name["clean: the day's files vs bare TCP of the same bytes"]
    assert bare["baseline"] > 0 and bare["target"] == "≤ 1.25"
    records = by_name["clean: the day's records at the town, files in flight vs none"]
    assert records["value"] > 0 and records["baseline"] > 0 and records["met"] in (True, False)
    assert records["ratio"] == pytest.approx(records["value"] / records["baseline"])
    if files.files_phase():
        assert bare["value"] is not None and bare["ratio"] is not None
    else:
        assert bare["value"] is None and "not measured" in bare["note"]
    assert set(report["targets_met"]) == {"clean_files_ratio", "clean_records_ratio", "cut_bytes_again"}
    assert not ours(), "namespaces left behind"


def test_the_link_is_shaped_made_lossy_cut_and_removed() -> None:
    with netlink.veth_pair() as pair:
        names = {pair.town.netns, pair.village.netns}
        assert names <= netlink.namespaces()
        pair.shape()
        assert pair.qdiscs().count("tbf") == 2 and "rate 1Mbit" in pair.qdiscs()
        pair.lose(50)
        assert pair.dropped() == 0
        pair.cut()
        state = netlink.run("ip", "-n", pair.village.netns, "link", "show", pair.village.dev)
        assert "state DOWN" in state
        pair.restore()
        state = netlink.run("ip", "-n", pair.village.netns, "link", "show", pair.village.dev)
        assert "state DOWN" not in state
        assert "tbf" in pair.qdiscs(), "the shaping did not survive the cut"
    assert not names & netlink.namespaces()


def test_the_day_s_applicants_have_valid_id_numbers() -> None:
    today = date(2026, 12, 7)
    numbers = [resident_id(n) for n in range(60)]
    assert all(validate_document(DocType.RESIDENT_ID, n, today) for n in numbers)
    assert len(set(numbers)) == 60
