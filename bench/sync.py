"""Sync over CURVE on loopback against the bare Ed25519 verify of the same records, in the same run.

A city (central, a town, five villages) is built once in a temp dir. Four villages each
take in a case through the desk, sync, and then author ``records`` more ``case.intake``
records of their own chain; a fifth one authors ``catch_up`` while "offline". Every run
copies that city, so each starts from the same state:

* **ingest**: the town's :class:`sync.link.endpoint.ParentServer` on 127.0.0.1 and four child
  processes, released at once, each running one :func:`sync.link.transport.sync_once` — every
  record decoded, verified, checked, projected and committed at the town. The baseline is
  PyNaCl's ``VerifyKey.verify`` over the same signed bytes, one after the other, on one core.
* **catch-up**: the fifth village's one ``sync_once`` moving its backlog up (target under
  2 s), against the bare verify time of the same records.
* **wire size**: the bytes a ``case.intake`` record takes in a BATCH message (its frames,
  shared out over the batch) against the same record as compact JSON (payload map with
  byte strings in base64, signature in base64).

Timed figures are the median of ``runs``; each ratio uses the baseline of its own run.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from nacl.signing import VerifyKey

from core.clock import FixedClock
from core.intake import case_number
from sync.link.endpoint import ParentServer
from sync.link.protocol import BATCH_RECORDS, Message, Phase, Type, encode
from sync.link.transport import sync_once, upstreams_for
from sync.record import codec, kinds
from sync.record.db import transaction
from sync.record.envelope import PREFIX_RECORD, split
from tests.helpers import CITY, TOWN, VILLAGE, Network
from tests.integration.syncnet import City, build_city, delegate, take_in
from tongban.homes import open_home

RECORDS = 1500
"""case.intake records each of the four children sends."""
CATCH_UP = 7000
RUNS = 3
CHILDREN = (VILLAGE, "330481104203", "330481104204", "330481104205")
OFFLINE = "330481104206"
TARGET_CATCH_UP_S = 2.0


@dataclass
class Prepared:
    root: Path
    fingerprint: str
    clock: FixedClock
    envelopes: dict[str, list[bytes]]  # the records each village waits to send
    sign_pk: dict[str, bytes]


def run(records: int = RECORDS, catch_up: int = CATCH_UP, runs: int = RUNS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _progress(f"sync: building the city, {len(CHILDREN)} x {records} + {catch_up} case records")
        started = time.perf_counter()
        prepared = _prepare(root / "city", records, catch_up)
        _progress(f"sync: built in {time.perf_counter() - started:.1f} s")

        ingest: list[tuple[float, float]] = []
        catching: list[tuple[float, float]] = []
        for n in range(runs):
            rate = _ingest_run(prepared, root / f"ingest-{n}")
            verify = _verify_rate(prepared, CHILDREN)
            ingest.append((rate, verify))
            _progress(f"sync: run {n + 1}: 4 children {rate:.0f} records/s, bare verify {verify:.0f}/s")
            wall = _catch_up_run(prepared, root / f"catch-up-{n}")
            bare = len(prepared.envelopes[OFFLINE]) / _verify_rate(prepared, (OFFLINE,))
            catching.append((wall, bare))
            _progress(f"sync: run {n + 1}: catch-up {wall * 1000:.0f} ms, bare verify {bare * 1000:.0f} ms")
        cbor_size, json_size = _wire_sizes(prepared.envelopes[OFFLINE][:BATCH_RECORDS])

    rate, verify, rate_ratio = _medians(ingest)
    wall, bare, wall_ratio = _medians(catching)
    _progress(
        f"sync: ingest ratio {rate_ratio:.2f}, catch-up {wall:.2f} s"
        f" (target < {TARGET_CATCH_UP_S:.0f} s), wire {cbor_size:.0f} B vs JSON {json_size:.0f} B"
    )
    return {
        "children": len(CHILDREN),
        "records_per_child": records,
        "catch_up_records": catch_up,
        "runs": runs,
        "targets_met": {
            "catch_up_seconds": wall < TARGET_CATCH_UP_S,
        },
        "figures": [
            {
                "name": f"ingest over CURVE, {len(CHILDREN)} children vs bare verify, one core",
                "value": rate,
                "baseline": verify,
                "unit": "records/s",
                "ratio": rate_ratio,
                "target": "",  # retired with central's: the same floors bound it
            },
            {
                "name": f"catch-up of {catch_up} records, one sync_once vs bare verify",
                "value": wall * 1000,
                "baseline": bare * 1000,
                "unit": "ms",
                "ratio": wall_ratio,
                "target": f"< {TARGET_CATCH_UP_S * 1000:.0f} ms",
            },
            {
                "name": "bytes per case.intake record, in a BATCH vs as JSON",
                "value": cbor_size,
                "baseline": json_size,
                "unit": "B",
                "ratio": cbor_size / json_size,
            },
        ],
    }


# -- building the city ---------------------------------------------------------------------


def _prepare(home: Path, records: int, catch_up: int) -> Prepared:
    city = build_city(home)
    villages = (*CHILDREN, OFFLINE)
    for code in villages[1:]:
        city.net.add_node(code, "village", TOWN)
    with city.serving(CITY, TOWN):
        _ok(city.sync(TOWN))
        for code in villages:
            delegate(city, code)
        _ok(city.sync(TOWN))
        for code in villages:
            _ok(city.sync(code))
            take_in(city, code)
            _ok(city.sync(code))
    envelopes: dict[str, list[bytes]] = {}
    sign_pk: dict[str, bytes] = {}
    for code in villages:
        count = catch_up if code == OFFLINE else records
        envelopes[code], sign_pk[code] = _author(city, code, count)
    return Prepared(home, city.net.fingerprint, city.clock, envelopes, sign_pk)


def _author(city: City, code: str, count: int) -> tuple[list[bytes], bytes]:
    """``count`` more intakes like the village's first, each a new case; their envelopes."""
    opened = open_home(city.home(code), city.clock)
    try:
        log = opened.log
        row = log.db.conn.execute(
            "SELECT envelope FROM records WHERE origin = ? AND kind = ? ORDER BY seq LIMIT 1",
            (code, kinds.CASE_INTAKE),
        ).fetchone()
        first = codec.decode(split(bytes(row[0]))[0])
        template, actor = first["body"], first.get("actor")
        day = date.fromisoformat(
            f"{template['case'][-13:-9]}-{template['case'][-9:-7]}-{template['case'][-7:-5]}"
        )
        made = []
        with transaction(log.db):
            for serial in range(2, count + 2):
                body = {**template, "case": case_number(code, day, serial)}
                record = log.append_local(opened.keys, code, kinds.CASE_INTAKE, body, actor=actor)
                made.append(record.envelope)
        return made, opened.keys.sign_public
    finally:
        opened.close()


def _copy(prepared: Prepared, target: Path) -> City:
    shutil.copytree(prepared.root, target)
    clock = FixedClock(t=prepared.clock.now(), step=1)
    return City(Network(target, clock, prepared.fingerprint), {})


# -- the runs -------------------------------------------------------------------------------


def _ingest_run(prepared: Prepared, target: Path) -> float:
    city = _copy(prepared, target)
    spawn = multiprocessing.get_context("spawn")
    ready, results = spawn.Queue(), spawn.Queue()
    go = spawn.Event()
    with ParentServer(lambda: open_home(city.home(TOWN), city.clock), "tcp://127.0.0.1:*") as server:
        workers = [
            spawn.Process(
                target=_child,
                args=(str(city.home(code)), server.endpoint, city.clock.now(), ready, go, results),
                daemon=True,
            )
            for code in CHILDREN
        ]
        for worker in workers:
            worker.start()
        for _ in workers:
            ready.get(timeout=120)
        started = time.monotonic()
        go.set()
        done = [results.get(timeout=300) for _ in workers]
        for worker in workers:
            worker.join(30)
    failed = [d for d in done if not d["ok"]]
    if failed:
        raise RuntimeError(f"a child's sync failed: {failed[0]}")
    moved = sum(d["up"] for d in done)
    # Each child's session also carries the status report it appends when welcomed.
    expected = sum(len(prepared.envelopes[c]) + 1 for c in CHILDREN)
    if moved != expected:
        raise RuntimeError(f"{moved} records moved up, {expected} expected")
    shutil.rmtree(target)
    return moved / (max(d["finished"] for d in done) - started)


def _child(home: str, endpoint: str, t: int, ready: Any, go: Any, results: Any) -> None:
    """One village's session, in its own process, started when ``go`` is set."""
    clock = FixedClock(t=t, step=1)
    opened = open_home(Path(home), clock)
    try:
        upstreams = upstreams_for(opened.log, opened.parent, endpoint, None, False)
        ready.put(opened.code)
        go.wait()
        result = sync_once(opened, upstreams, timeout=120)
        finished = time.monotonic()
        error = result.error.render("en") if result.error else ""
        results.put({"ok": result.ok, "up": result.summary.up, "finished": finished, "error": error})
    finally:
        opened.close()


def _catch_up_run(prepared: Prepared, target: Path) -> float:
    city = _copy(prepared, target)
    with ParentServer(lambda: open_home(city.home(TOWN), city.clock), "tcp://127.0.0.1:*") as server:
        opened = open_home(city.home(OFFLINE), city.clock)
        try:
            upstreams = upstreams_for(opened.log, opened.parent, server.endpoint, None, False)
            started = time.perf_counter()
            result = sync_once(opened, upstreams, timeout=120)
            wall = time.perf_counter() - started
        finally:
            opened.close()
    if not result.ok or result.summary.up != len(prepared.envelopes[OFFLINE]) + 1:  # and its status report
        raise RuntimeError(f"catch-up: {result.error}, {result.summary.up} records up")
    shutil.rmtree(target)
    return wall


def _verify_rate(prepared: Prepared, codes: tuple[str, ...]) -> float:
    """PyNaCl alone over the signed bytes of the records ``codes`` wait to send, one core."""
    work = []
    for code in codes:
        signed = [split(envelope) for envelope in prepared.envelopes[code]]
        work.append((VerifyKey(prepared.sign_pk[code]), [(PREFIX_RECORD + p, sig) for p, sig in signed]))
    started = time.perf_counter()
    for key, jobs in work:
        for message, sig in jobs:
            key.verify(message, sig)
    elapsed = time.perf_counter() - started
    return sum(len(jobs) for _, jobs in work) / elapsed


def _wire_sizes(envelopes: list[bytes]) -> tuple[float, float]:
    """Bytes per record in one full BATCH (all three frames), and as compact JSON."""
    body = {"phase": Phase.UP.value, "n": 1, "acked": 0, "records": envelopes, "upto": len(envelopes)}
    frames = encode(Message(Type.BATCH, body))
    in_batch = sum(len(f) for f in frames) / len(envelopes)
    as_json = statistics.fmean(len(_json(envelope)) for envelope in envelopes)
    return in_batch, as_json


def _json(envelope: bytes) -> bytes:
    payload, sig = split(envelope)

    def plain(value: Any) -> Any:
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    record = {"payload": plain(codec.decode(payload)), "sig": plain(sig)}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def _medians(pairs: list[tuple[float, float]]) -> tuple[float, float, float]:
    return (
        statistics.median(v for v, _ in pairs),
        statistics.median(b for _, b in pairs),
        statistics.median(v / b for v, b in pairs),
    )


def _ok(result: Any) -> None:
    if not result.ok:
        raise RuntimeError(f"sync failed while building the city: {result.error}")


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, ensure_ascii=False))
