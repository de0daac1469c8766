"""The order in which a parent handles what its children sent (``sync.link.endpoint.Inbox``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sync.link.endpoint import Inbox, is_upload


def test_light_messages_pass_other_childrens_uploads() -> None:
    inbox: Inbox[str] = Inbox()
    inbox.put("a: BATCH 1", b"a", heavy=True)
    inbox.put("b: BATCH 1", b"b", heavy=True)
    inbox.put("c: HELLO", b"c")
    inbox.put("zap", None)
    inbox.put("b: BATCH 2", b"b", heavy=True)
    inbox.put("d: ACK down", b"d")
    assert [inbox.take() for _ in range(len(inbox))] == [
        "c: HELLO",
        "zap",
        "d: ACK down",
        "a: BATCH 1",
        "b: BATCH 1",
        "b: BATCH 2",
    ]


def test_one_connections_messages_keep_their_order() -> None:
    inbox: Inbox[str] = Inbox()
    inbox.put("a: BATCH", b"a", heavy=True)
    inbox.put("a: ERROR", b"a")  # behind its own batch: it waits for it
    inbox.put("b: END up", b"b")
    assert [inbox.take() for _ in range(3)] == ["b: END up", "a: BATCH", "a: ERROR"]


@given(st.lists(st.tuples(st.sampled_from([b"a", b"b", b"c", None]), st.booleans()), max_size=40))
def test_every_item_comes_out_once_and_each_senders_in_order(puts: list[tuple[bytes | None, bool]]) -> None:
    inbox: Inbox[int] = Inbox()
    for n, (sender, heavy) in enumerate(puts):
        inbox.put(n, sender, heavy)
    out = [inbox.take() for _ in range(len(puts))]
    assert sorted(out) == list(range(len(puts))) and len(inbox) == 0
    for sender in (b"a", b"b", b"c"):
        mine = [n for n in out if puts[n][0] == sender]
        assert mine == sorted(mine)


def test_only_a_batch_or_a_files_chunk_is_an_upload() -> None:
    assert is_upload([b"tongban-sync/1", b"BATCH", b"\\xa0"])
    assert is_upload([b"tongban-sync/4", b"CHUNK", b"\\xa0"])
    assert not is_upload([b"tongban-sync/4", b"CACK", b"\\xa0"])
    assert not is_upload([b"tongban-sync/1", b"ACK", b"\\xa0"])
    assert not is_upload([])
