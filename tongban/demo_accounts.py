"""The demo's accounts and password, and :func:`carry`: what a sync would bring, ingested at
once (the demo's setup moves records between its stores with it, before any link runs)."""

from __future__ import annotations

from core.admin import is_within
from core.errors import EnrollmentError, ErrorCode
from sync.record import kinds
from sync.record.log import RecordLog, decode_stored

DEMO_PASSWORD = "tongban-demo-2026"
ACCOUNTS = {
    "central": [
        ("shixiang", "施事项", ["catalog_admin"]),
        ("shouquan", "寿授权", ["delegation_admin"]),
        ("shenji", "沈审计", ["auditor"]),
        ("chakan", "车查看", ["viewer"]),
    ],
    "town": [
        ("shenpi", "沈审批", ["approver", "clerk"]),
        ("guanli", "顾管理", ["admin", "auditor"]),
    ],
    "village": [
        ("wangli", "王丽", ["clerk", "approver"]),
        ("cunguan", "陈村管", ["admin", "auditor"]),
    ],
    "department": [
        ("huzheng", "胡政", ["approver"]),
        ("hzguanli", "何管理", ["admin", "auditor"]),
    ],
}


def carry(src: RecordLog, dst: RecordLog, dst_code: str, *, up_from: str | None = None) -> int:
    """Ingest into ``dst`` what sync would bring it from ``src``; the number of records."""
    anchor = dst.anchor()
    if anchor is None:
        raise EnrollmentError(ErrorCode.NOT_ENROLLED, dst_code)
    moved = 0
    for _, envelope in src.envelopes():
        record = decode_stored(envelope)
        if up_from is not None:
            wanted = is_within(record.origin, up_from)
        else:
            wanted = kinds.concerns(record.kind, record.origin, record.body, dst_code, anchor.origin)
        if wanted and not dst.has(record.id):
            dst.ingest(envelope, "demo-setup")
            moved += 1
    return moved
