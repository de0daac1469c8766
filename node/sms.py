"""Telling a resident by SMS that a decision or a supplement request came back for their case.

The messages wait in the node's outbox (``sms_outbox``, :mod:`node.window_store`), one per
case event, so nothing is sent twice and nothing is lost while the gateway cannot be
reached; :func:`deliver` hands the waiting ones to the gateway. A gateway is anything with
``send(phone, text)``:

* :class:`LogGateway` — each message is one line of a file: the demo's, and what a center
  without a contract uses to see what would be sent;
* a real operator's gateway (an SMS platform's HTTP API, or the provincial government's
  unified messaging platform) is an adapter class of a few lines with the operator's
  credentials, configured as ``[sms] gateway`` — not built here: every platform has its
  own contract, signature and template approval.

:func:`queue_news` finds, since the outbox began, every applied approval, rejection and
supplement request on a case taken in at this node, whoever made it (the town deciding a
village's proxy case, or this node its own), and queues its message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from sqlite_utils import Database

from core.cases import Event
from core.clock import Clock, local_time
from core.errors import ConfigError, ErrorCode
from node import store as node_store
from node.window_store import mark_sent, queue_message, queued, waiting_messages
from sync.projection import case_queries
from sync.record.arrival import newest_arrival

NEWS_EVENTS = (Event.APPROVE.value, Event.REJECT.value, Event.REQUEST_SUPPLEMENT.value)
_SINCE = "sms_since"


class Gateway(Protocol):
    def send(self, phone: str, text: str) -> None:
        """Send ``text`` to ``phone``; raise :class:`core.errors.TongbanError` if it failed."""


class NoGateway:
    """No gateway configured: messages wait in the outbox."""

    def send(self, phone: str, text: str) -> None:
        raise ConfigError(ErrorCode.CONFIG, "[sms] gateway is none", zh="未配置短信网关")


class LogGateway:
    """Appends each message to ``path``: ``local time<TAB>phone<TAB>text``."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self.clock = clock

    def send(self, phone: str, text: str) -> None:
        stamp = local_time(self.clock.now()).isoformat(timespec="seconds")
        with self.path.open("a", encoding="utf-8") as out:
            out.write(f"{stamp}\t{phone}\t{text}\n")


def gateway_for(name: str, home: Path, log_file: str, clock: Clock) -> Gateway:
    """The gateway ``[sms] gateway`` names."""
    return LogGateway(home / log_file, clock) if name == "log" else NoGateway()


def message_text(center: str, case_no: str, item_name: str, event: str, at: int) -> str:
    """The message for one step, in the plain words of a government SMS."""
    day = local_time(at).strftime("%m月%d日")
    if event == Event.REQUEST_SUPPLEMENT.value:
        what = "需要补正材料，请到受理窗口领取补正材料告知书"
    elif event == Event.APPROVE.value:
        what = "已办结（准予），请按约定方式领取结果"
    else:
        what = "已办结（不予），请到受理窗口领取决定通知书"
    return f"【{center}】您申请的{item_name}（办件编号{case_no}）于{day}{what}。"


def queue_news(db: Database, node: str, center: str, now: int) -> int:
    """Queue a message for every news step not queued yet; how many were queued. The first
    call marks where the outbox begins: steps held before it are not sent."""
    since = node_store.get_state(db, _SINCE)
    if since is None:
        node_store.set_state(db, _SINCE, str(newest_arrival(db)))
        return 0
    found = [n for n in case_queries.news(db, node, NEWS_EVENTS, own=True) if n.arrival > int(since)]
    done = queued(db, [n.record_id for n in found])
    count = 0
    for step in found:
        if step.record_id in done:
            continue
        case = case_queries.case(db, step.case_no)
        if case is None or not case.phone:
            continue
        text = message_text(center, case.case_no, case.item_name, step.event, step.at)
        count += queue_message(db, step.record_id, case.case_no, case.phone, text, now)
    return count


def deliver(db: Database, gateway: Gateway, now: int) -> int:
    """Hand the waiting messages to ``gateway``; how many went. One that fails stays
    waiting with its error, and is tried again next time."""
    sent = 0
    for message in waiting_messages(db):
        try:
            gateway.send(message.phone, message.text)
        except Exception as exc:  # the gateway's own failure: kept with the message, tried again
            mark_sent(db, message.event_id, now, str(exc)[:200] or type(exc).__name__)
            continue
        mark_sent(db, message.event_id, now, None)
        sent += 1
    return sent
