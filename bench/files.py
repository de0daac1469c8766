"""Scanned pages over a village's slow link, against a bare TCP transfer of the same bytes.

A town and a village in two network namespaces joined by a veth pair (:mod:`bench.netlink`),
shaped on both ends with ``tc … tbf rate 1mbit burst 32kbit latency 400ms``; once clean and
once with about 2 % of the packets arriving in either namespace dropped (nftables). The
town's endpoint runs as a node runs it (``tongban serve-sync``, in the town's namespace), the
village's sessions make ``tongban node sync --once``'s call in processes of their own in the
village's namespace (:mod:`bench.village_sync`). The day
(:mod:`bench.filesday`): 30 proxy cases, two scans of about 250 KB each. Every run starts
from a copy of the same stores. Figures, each condition:

* **(a) files against bare TCP**: from the moment the day's records are at the town to the
  moment its last file is whole there, against ``bench.baretcp`` sending the same bytes
  from the village's namespace to the town's over the same link, in the same run.
* **(b) records with and without files**: from the session's start to the day's intake
  records all at the town, the day with its files against the same day without any.
* **(c) the cut** (clean link): the link is cut (both ends down) once half the file bytes
  are at the town, brought back when the session has failed, and sessions run until every
  file is whole. Bytes sent twice: the bytes of file chunks the village sent over the cut
  and resumed sessions (the link counts them, a failed session's too; each session prints
  its count: :mod:`bench.village_sync`), less the day's file bytes. Beside it, against the
  uncut session of the same day: all the messages' bytes, and the veth's transmitted bytes
  (which add what TCP sent again).

Until the sync link carries files (protocol 4, :func:`files_phase`), (a) and (c) are reported
as not measured and (b) is the records alone, with the pages' refs in them.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import filesday, netlink
from bench.filesday import Day
from sync.link import protocol
from sync.record import kinds
from tests.helpers import TOWN, VILLAGE

CASES = 30
SCANS = 2
CHUNK_BYTES = 64 * 1024
"""A file chunk on the link, for the cut's target (the link's own size once it has one)."""
TARGET_FILES_RATIO = 1.25
TARGET_RECORDS_RATIO = 1.1
TONGBAN = [sys.executable, "-m", "tongban"]
SESSION_TIMEOUT = 30.0
"""``--timeout`` of a session: seconds it waits for any message."""
RUN_LIMIT = 900.0
"""Seconds any one run (a session, a transfer, a cut and its recovery) may take."""
POLL = 0.05
MAX_RESUMES = 10
RUNS = 3
"""Sessions of the records alone per condition; the records' figure is the median."""
FILE_RUNS = 1
"""Sessions with the files run to their end per condition, once the link moves them; the
other ``RUNS - FILE_RUNS`` with files are stopped once their records are at the town."""
_ports = itertools.count(7741)


def files_phase() -> bool:
    """Whether this version's sync link moves files (protocol version 4)."""
    return 4 in protocol.VERSIONS


def chunk_size() -> int:
    """The link's file chunk (``sync.link.protocol.CHUNK_BYTES`` once it moves files)."""
    return int(getattr(protocol, "CHUNK_BYTES", CHUNK_BYTES))


@dataclass
class Timed:
    records: float | None = None
    """Seconds from the session's start to the day's records at the town."""
    files: float | None = None
    """Seconds from the records at the town to the last file whole there."""
    sent: int = 0
    """Bytes of the messages the village sent (ZMTP frames)."""
    wire: int = 0
    """Bytes the village's end of the link transmitted in the run (its veth's counter)."""
    log: str = ""


def run(
    cases: int = CASES,
    scans: int = SCANS,
    conditions: tuple[str, ...] = ("clean", "lossy"),
    shaped: bool = True,
    cut: bool = True,
    runs: int = RUNS,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _progress(f"files: drawing {cases * scans} scans, taking in {cases} cases twice")
        pages = [filesday.scan(seed) for seed in range(cases * scans)]
        base = filesday.base(root / "base")
        with_files = filesday.prepare(base, root / "with-files", cases, scans, pages)
        plain = filesday.prepare(base, root / "records-only", cases, 0, pages)
        total = with_files.file_bytes
        _progress(f"files: {len(with_files.files)} files, {total / 1e6:.2f} MB after normalisation")
        measured: dict[str, dict[str, Any]] = {}
        for condition in conditions:
            measured[condition] = _condition(root / condition, condition, with_files, plain, shaped, runs)
        cut_figures = _cut(root / "cut", with_files, measured, shaped) if cut and files_phase() else None
    return _report(cases, scans, len(with_files.files), total, shaped, measured, cut_figures)


def _condition(
    root: Path, condition: str, with_files: Day, plain: Day, shaped: bool, runs: int
) -> dict[str, Any]:
    root.mkdir()
    with netlink.veth_pair() as pair:
        _set_up(pair, condition, shaped)
        bare = _bare_tcp(pair, with_files.files, root)
        _progress(f"files: {condition}: bare TCP {bare:.1f} s for {with_files.file_bytes / 1e6:.2f} MB")
        # a session with files takes minutes on the shaped link: the others are stopped once
        # their records are at the town and their files are moving
        file_runs = min(runs, FILE_RUNS) if files_phase() else runs
        plains = [filesday.copy(plain, root / f"plain-{n}") for n in range(runs)]
        days = [filesday.copy(with_files, root / f"files-{n}") for n in range(runs)]
        # every town's endpoint started at once, before the sessions: each waits for its turn
        towns = _serve_all(pair, [*plains, *days], root)
        plain_towns, day_towns = towns[:runs], towns[runs:]
        alone: list[Timed] = []
        loaded: list[Timed] = []
        for n in range(runs):
            alone.append(_session(pair, plains[n], plain_towns[n], root, expect_files=False))
            _progress(f"files: {condition}: records alone at the town in {alone[-1].records:.2f} s")
            whole = n < file_runs
            loaded.append(
                _session(pair, days[n], day_towns[n], root, expect_files=files_phase(), whole=whole)
            )
            files = "" if loaded[-1].files is None else f", files {loaded[-1].files:.1f} s"
            at = loaded[-1].records or 0.0
            _progress(f"files: {condition}: with files, records at the town in {at:.2f} s{files}")
        dropped = pair.dropped()
        if condition == "lossy" and dropped == 0:
            raise netlink.LinkError("the loss rules dropped nothing")
    return {
        "bare_tcp_s": bare,
        "records_only": _median(alone),
        "with_files": _median(loaded),
        "dropped": dropped,
    }


def _median(runs: list[Timed]) -> Timed:
    """The median records time, with the files' time and bytes of the first (whole) run."""
    ordered = sorted(runs, key=lambda t: t.records or 0.0)
    first = runs[0]
    return Timed(ordered[len(ordered) // 2].records, first.files, first.sent, first.wire, first.log)


def _set_up(pair: netlink.Pair, condition: str, shaped: bool) -> None:
    if shaped:
        pair.shape()
        if "tbf" not in pair.qdiscs():
            raise netlink.LinkError(f"no tbf on the link: {pair.qdiscs()}")
    if condition == "lossy":
        pair.lose(50)


# -- the runs -------------------------------------------------------------------------------------


def _bare_tcp(pair: netlink.Pair, files: list[Path], logs: Path) -> float:
    """Seconds for ``files`` over a bare TCP connection, village → town."""
    port = str(next(_ports))
    expected = str(sum(p.stat().st_size for p in files))
    sink_log, send_log = logs / f"sink-{port}.log", logs / f"send-{port}.log"
    listen = ["-m", "bench.baretcp", "sink", pair.town.address, port, expected]
    sink = pair.python(pair.town, listen, sink_log)
    pair.wait_for(sink, sink_log, "listening")
    sender = pair.python(
        pair.village, ["-m", "bench.baretcp", "send", pair.town.address, port, *map(str, files)], send_log
    )
    _wait(sender, send_log, RUN_LIMIT)
    sink.wait(30)
    return float(json.loads(send_log.read_text().strip().splitlines()[-1])["seconds"])


Town = tuple[str, Any]
"""A town's endpoint and its ``tongban serve-sync`` process."""


def _serve_all(pair: netlink.Pair, days: list[Day], logs: Path) -> list[Town]:
    """``tongban serve-sync`` for each day's town, in the town's namespace, all started at once."""
    started = []
    for day in days:
        port = next(_ports)
        endpoint = f"tcp://{pair.town.address}:{port}"
        log = logs / f"serve-{port}.log"
        args = [*TONGBAN, "serve-sync", str(day.city.home(TOWN)), "--listen", endpoint]
        started.append((endpoint, pair.start(pair.town, args, log), log))
    for _, server, log in started:
        pair.wait_for(server, log, "serving sync", seconds=60)
    return [(endpoint, server) for endpoint, server, _ in started]


def _sync(pair: netlink.Pair, day: Day, endpoint: str, log: Path) -> Any:
    """The village's session: ``tongban node sync --once``'s call, in a process of its own in the
    village's namespace, saying what it sent (:mod:`bench.village_sync`)."""
    args = ["-m", "bench.village_sync", str(day.city.home(VILLAGE)), endpoint, str(SESSION_TIMEOUT)]
    return pair.python(pair.village, args, log)


def _said(log: Path) -> dict[str, Any]:
    """What a village session said of itself (its last line); empty if it said nothing."""
    lines = log.read_text(errors="replace").strip().splitlines()
    try:
        return dict(json.loads(lines[-1])) if lines else {}
    except ValueError:
        return {}


def _session(
    pair: netlink.Pair, day: Day, town: Town, logs: Path, *, expect_files: bool, whole: bool = True
) -> Timed:
    """One session of the day's village; when its records and (if expected) files arrived.
    Not ``whole``: the session is stopped once its records are at the town and its files are
    moving (the records' time alone is wanted)."""
    endpoint, server = town
    log = logs / f"session-{next(_ports)}.log"
    sent_before = _tx_bytes(pair.village)
    started = time.monotonic()
    proc = _sync(pair, day, endpoint, log)
    timed = Timed()
    records_at = files_at = None
    deadline = started + RUN_LIMIT
    while time.monotonic() < deadline:
        finished = proc.poll() is not None
        now = time.monotonic()
        if records_at is None and _intakes_at_town(day) >= day.cases:
            records_at = now
        waiting = expect_files and files_at is None and records_at is not None
        if waiting and _files_at_town(day) == len(day.files):
            files_at = now
        if finished:
            break
        if not whole and records_at is not None and (_town_file_bytes(day) > 0 or now > records_at + 10):
            proc.terminate()
            expect_files = False
        time.sleep(POLL)
    if whole:
        _wait(proc, log, 30)
    else:
        proc.wait(30)
    server.terminate()
    server.wait(30)
    timed.log = log.read_text()
    if records_at is None:
        raise netlink.LinkError(f"the day's records did not reach the town: {timed.log[-2000:]}")
    if expect_files and files_at is None:
        raise netlink.LinkError(f"the day's files did not reach the town: {timed.log[-2000:]}")
    timed.records = records_at - started
    timed.files = None if files_at is None else files_at - records_at
    timed.wire = _tx_bytes(pair.village) - sent_before
    timed.sent = int(_said(log).get("sent", 0))
    return timed


def _cut(root: Path, day: Day, measured: dict[str, dict[str, Any]], shaped: bool) -> dict[str, Any]:
    """The day's session cut once half its file bytes are at the town; the sessions after it."""
    root.mkdir()
    copy = filesday.copy(day, root / "city")
    with netlink.veth_pair() as pair:
        _set_up(pair, "clean", shaped)
        ((endpoint, _),) = _serve_all(pair, [copy], root)
        sent_before = _tx_bytes(pair.village)
        log = root / "cut-session.log"
        proc = _sync(pair, copy, endpoint, log)
        deadline = time.monotonic() + RUN_LIMIT
        while _town_file_bytes(copy) < copy.file_bytes / 2:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise netlink.LinkError(f"the session ended before half the files: {log.read_text()[-2000:]}")
            time.sleep(POLL)
        in_flight = max(1, _partials_at_town(copy))
        pair.cut()
        held_at_cut = _town_file_bytes(copy)
        cut_at = time.monotonic()
        try:
            proc.wait(SESSION_TIMEOUT + 30)
        finally:
            failed_after = time.monotonic() - cut_at
            pair.restore()
        said = [_said(log)]
        sessions = 0
        while _files_at_town(copy) < len(copy.files):
            if time.monotonic() > deadline or sessions >= MAX_RESUMES:
                raise netlink.LinkError(f"the files were not all at the town after the cut: {said}")
            sessions += 1
            resumed = root / f"resume-{sessions}.log"
            again = _sync(pair, copy, endpoint, resumed)
            again.wait(RUN_LIMIT)  # a session that fails is followed by another (bounded)
            said.append(_said(resumed))
        wire = _tx_bytes(pair.village) - sent_before
    uncut = measured.get("clean", {}).get("with_files")
    sent = sum(int(s.get("sent", 0)) for s in said)
    counted = [s.get("file_chunks") for s in said]
    chunks = None if None in counted else sum(int(c) for c in counted) - copy.file_bytes
    return {
        "failed_after_s": failed_after,
        "sessions_after": sessions,
        "files_in_flight": in_flight,
        "held_at_cut": held_at_cut,
        "first_session": said[0],
        "chunk_bytes_again": chunks,
        "message_bytes_again": None if uncut is None else sent - uncut.sent,
        "wire_bytes_again": None if uncut is None else wire - uncut.wire,
    }


def _wait(proc: Any, log: Path, seconds: float) -> None:
    try:
        status = proc.wait(seconds)
    except Exception as exc:
        proc.kill()
        raise netlink.LinkError(f"{proc.args} did not end within {seconds:.0f} s") from exc
    if status != 0:
        raise netlink.LinkError(f"{proc.args} exited with {status}: {log.read_text()[-2000:]}")


# -- reading the stores and the link -------------------------------------------------------------


def _intakes_at_town(day: Day) -> int:
    conn = sqlite3.connect(f"file:{day.city.home(TOWN) / 'node.db'}?mode=ro", uri=True, timeout=10)
    try:
        sql = "SELECT count(*) FROM records WHERE origin = ? AND kind = ?"
        return int(conn.execute(sql, (VILLAGE, kinds.CASE_INTAKE)).fetchone()[0])
    finally:
        conn.close()


def _files_at_town(day: Day) -> int:
    held = set(filesday.file_store(day.city.home(TOWN)).shas())
    return sum(1 for p in day.files if p.name in held)


def _town_file_bytes(day: Day) -> int:
    return filesday.file_store(day.city.home(TOWN)).used_bytes()


def _partials_at_town(day: Day) -> int:
    return sum(1 for _ in filesday.file_store(day.city.home(TOWN)).partials())


def _tx_bytes(end: netlink.End) -> int:
    return int(netlink.run(*end.exec_args(["cat", f"/sys/class/net/{end.dev}/statistics/tx_bytes"])))


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# -- the report ------------------------------------------------------------------------------------


def _report(
    cases: int,
    scans: int,
    count: int,
    total: int,
    shaped: bool,
    measured: dict[str, dict[str, Any]],
    cut: dict[str, Any] | None,
) -> dict[str, Any]:
    link = "tbf 1 mbit, 400 ms, both directions" if shaped else "unshaped veth"
    figures: list[dict[str, Any]] = []
    targets: dict[str, bool | None] = {}
    for condition, got in measured.items():
        loaded, alone = got["with_files"], got["records_only"]
        files_s = loaded.files
        figures.append(
            {
                "name": f"{condition}: the day's files vs bare TCP of the same bytes",
                "value": files_s,
                "baseline": got["bare_tcp_s"],
                "unit": "s",
                "ratio": None if files_s is None else files_s / got["bare_tcp_s"],
                "target": f"≤ {TARGET_FILES_RATIO}",
                "met": None if files_s is None else files_s / got["bare_tcp_s"] <= TARGET_FILES_RATIO,
                "note": "" if files_s is not None else "not measured: the sync link carries no files yet",
            }
        )
        ratio = loaded.records / alone.records
        figures.append(
            {
                "name": f"{condition}: the day's records at the town, files in flight vs none",
                "value": loaded.records,
                "baseline": alone.records,
                "unit": "s",
                "ratio": ratio,
                "target": f"≤ {TARGET_RECORDS_RATIO}",
                "met": ratio <= TARGET_RECORDS_RATIO,
                "note": "" if files_phase() else "the records with their pages' refs; no files moved",
            }
        )
        targets[f"{condition}_files_ratio"] = figures[-2]["met"]
        targets[f"{condition}_records_ratio"] = figures[-1]["met"]
    again = None if cut is None else cut["chunk_bytes_again"]
    if again is None and cut is not None:  # a link that does not count its chunks
        again = cut["message_bytes_again"]
    wire = None if cut is None else cut["wire_bytes_again"]
    limit = chunk_size() * (1 if cut is None else cut["files_in_flight"])
    missing = "" if cut is not None else "not measured: the sync link carries no files yet"
    figures.append(
        {
            "name": "after a cut halfway: bytes that crossed the link twice",
            "value": wire,
            "baseline": None,
            "unit": "B",
            "ratio": None,
            "target": f"< {limit} (one chunk per file in flight)",
            "met": None if wire is None else wire < limit,
            "note": missing
            or "the village's veth: bytes transmitted in the cut run and its resumption, less an uncut run's",
        }
    )
    figures.append(
        {
            "name": "after a cut halfway: bytes of file chunks handed to the link again",
            "value": again,
            "baseline": None,
            "unit": "B",
            "ratio": None,
            "target": "",
            "met": None,
            "note": missing
            or "the chunks under credit when the link went down; most were still queued at the village",
        }
    )
    targets["cut_bytes_again"] = figures[-2]["met"]
    return {
        "cases": cases,
        "scans_per_case": scans,
        "files": count,
        "file_bytes": total,
        "link": link,
        "files_phase": files_phase(),
        "dropped_packets": {c: g["dropped"] for c, g in measured.items()},
        "cut": cut,
        "targets_met": targets,
        "figures": figures,
    }
