"""The link between centrals as the crossing case uses it: queue, expect, look.

``enqueue(db, peer, data) -> seq``
    a message (opaque bytes, at most 1 MiB) to the peer city ``peer`` (its net), in the
    caller's transaction; it crosses once, in order, after every message queued before it.
``enqueue_file(db, peer, sha, size) -> seq``
    a file central holds (its hex SHA-256 and size), crossing in checked chunks in the
    same order as the messages.
``expect_file(db, peer, sha, size)``
    the receiving side: a file a delivered message listed may come from ``peer`` (no file
    is taken unless expected; once whole, it is no longer expected).
``contacts(db) -> [PeerContact]``
    per linked peer: ``net``, ``last_in``, ``last_out``, ``waiting_out``, ``last_error``,
    ``in_seq``.

Each message is handed to the receiving central's deliver hook, ``deliver(db, peer, data)``,
inside the transaction that advances the inbox's high-water mark (:mod:`central.peer_link`).
The tables are :mod:`central.peer_link_store`'s.
"""

from __future__ import annotations

from central.peer_link_store import PeerContact, contacts, enqueue, enqueue_file, expect_file

__all__ = ["PeerContact", "contacts", "enqueue", "enqueue_file", "expect_file"]
