"""zmq's errors at the link's one boundary (sync.link.zmq_boundary), on real sockets.

A bad endpoint is the operator's to fix (a ``ConfigError``, ``E_CONFIG``, naming it), a
socket that fails is an unreachable link (a ``SyncError``, ``E_SYNC_UNREACHABLE``), each
with zmq's error as its cause; nothing waiting is no error, and a reply to a child that
has gone is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from core.errors import ConfigError, ErrorCode, SyncError
from sync.link.endpoint import ParentServer
from sync.link.transport import Upstream, sync_once
from sync.link.zmq_boundary import bind, connect, receive, receive_ready, send_to_peer
from tests.helpers import TOWN, VILLAGE
from tests.integration.syncnet import City, build_city

Context = zmq.Context[Any]


@pytest.fixture
def context() -> Iterator[Context]:
    context: Context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.mark.parametrize("endpoint", ["nowhere", "tcp://127.0.0.1:port", "ipx://127.0.0.1:1"])
def test_connecting_to_what_is_no_endpoint_is_a_config_error(context: Context, endpoint: str) -> None:
    with pytest.raises(ConfigError) as info:
        connect(context.socket(zmq.DEALER), endpoint)
    assert info.value.code is ErrorCode.CONFIG and endpoint in info.value.detail
    assert isinstance(info.value.__cause__, zmq.ZMQError)


def test_binding_an_address_in_use_is_a_config_error(context: Context) -> None:
    holder = context.socket(zmq.ROUTER)
    taken = bind(holder, "tcp://127.0.0.1:*")
    assert taken.startswith("tcp://127.0.0.1:") and not taken.endswith(":*")
    with pytest.raises(ConfigError) as info:
        bind(context.socket(zmq.ROUTER), taken)
    assert info.value.code is ErrorCode.CONFIG and taken in info.value.detail


def test_nothing_waiting_is_none_and_a_message_waiting_is_read(context: Context) -> None:
    server = context.socket(zmq.PULL)
    endpoint = bind(server, "inproc://boundary")
    assert receive_ready(server, "the test") is None
    client = context.socket(zmq.PUSH)
    connect(client, endpoint)
    client.send_multipart([b"a", b"b"])
    assert [frame.bytes for frame in receive(server, "the test", copy=False)] == [b"a", b"b"]


def test_a_reply_to_a_peer_that_has_gone_is_dropped(context: Context) -> None:
    router = context.socket(zmq.ROUTER)
    router.router_mandatory = True
    bind(router, "tcp://127.0.0.1:*")
    assert send_to_peer(router, [b"nobody", b"tongban-sync/2", b"BYE", b""]) is False


def test_a_socket_closed_under_its_reader_is_an_unreachable_link(
    context: Context,
) -> None:
    sock = context.socket(zmq.DEALER)
    sock.close(0)
    with pytest.raises(SyncError) as info:
        receive(sock, "the parent")
    assert info.value.code is ErrorCode.SYNC_UNREACHABLE and "the parent" in info.value.detail
    assert isinstance(info.value.__cause__, zmq.ZMQError)


@pytest.fixture
def city(tmp_path: Path) -> City:
    return build_city(tmp_path)


def test_a_child_told_a_bad_endpoint_reports_a_config_error(city: City) -> None:
    opened = city.open(VILLAGE)
    try:
        result = sync_once(opened, [Upstream("tcp://127.0.0.1:port", TOWN, bytes(32))])
    finally:
        opened.close()
    assert not result.ok and isinstance(result.error, ConfigError)
    assert result.error.code is ErrorCode.CONFIG
    assert result.attempts == [("tcp://127.0.0.1:port", "E_CONFIG")]


def test_a_parent_told_a_bad_listen_endpoint_does_not_start_and_says_why(city: City) -> None:
    server = ParentServer(lambda: city.open(TOWN), "tcp://127.0.0.1:port")
    with pytest.raises(ConfigError) as info:
        server.start()
    server.stop()
    assert info.value.code is ErrorCode.CONFIG and "tcp://127.0.0.1:port" in info.value.detail
