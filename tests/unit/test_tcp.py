"""The TCP connect-and-classify edge, against real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import pytest

from collectors.tcp import ConnectError, knock, open_tcp

HOST = "127.0.0.1"


@contextlib.contextmanager
def listener(backlog: int = 8) -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((HOST, 0))
    server.listen(backlog)
    try:
        yield server
    finally:
        server.close()


def closed_port() -> int:
    """A port nothing listens on: bound then released (the kernel answers RST)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def failure(port: int, timeout: float = 1.0, host: str = HOST) -> ConnectError:
    with pytest.raises(ConnectError) as caught:
        asyncio.run(knock(host, port, timeout))
    return caught.value


def test_a_listening_port_connects_and_opens_streams() -> None:
    with listener() as server:
        port = server.getsockname()[1]
        seconds = asyncio.run(knock(HOST, port, 1.0))
        server.accept()[0].close()  # the knock's connection, closed at once by the client

        async def session() -> bytes:
            reader, writer = await asyncio.wait_for(open_tcp(HOST, port, 1.0), 2)
            peer, _ = server.accept()
            with peer:
                peer.sendall(b"hello\n")
                line = await asyncio.wait_for(reader.readline(), 2)
            writer.close()
            return line

        assert asyncio.run(session()) == b"hello\n"
    assert 0 <= seconds < 1.0


def test_a_closed_port_is_refused_with_its_time() -> None:
    refused = failure(closed_port())
    assert refused.reason == "refused"
    assert str(refused) == "connection refused"
    assert 0 <= refused.seconds < 1.0


def test_a_full_accept_queue_is_a_timeout() -> None:
    """Nobody accepts and the queue is full: the kernel drops further SYNs, the connect hangs."""
    with listener(backlog=0) as server:
        port = server.getsockname()[1]
        fillers = []
        for _ in range(4):  # backlog 0 still queues one or two; more than that is dropped
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex((HOST, port))
            fillers.append(sock)
        try:
            hung = failure(port, timeout=0.3)
        finally:
            for sock in fillers:
                sock.close()
    assert hung.reason == "timeout"
    assert str(hung) == "no TCP connection within 0.3 s"
    assert 0.3 <= hung.seconds < 1.0


def test_a_socket_error_is_unreachable_with_its_strerror() -> None:
    """A multicast address has no TCP route: the kernel says so at once, no packet leaves."""
    lost = failure(502, host="224.0.0.1")
    assert lost.reason == "unreachable"
    assert str(lost) == "Network is unreachable"


def test_streams_fail_the_same_way() -> None:
    with pytest.raises(ConnectError) as caught:
        asyncio.run(open_tcp(HOST, closed_port(), 1.0))
    assert caught.value.reason == "refused"


def test_a_collector_reports_it_as_a_poll_error() -> None:
    refused = ConnectError("refused", "connection refused", 0.0).poll_error("u@h:1", "check upsd")
    assert (refused.reason, str(refused)) == ("refused", "u@h:1: connection refused; check upsd")
    # The metric vocabulary has no "unresolved": a name that does not resolve is unreachable.
    unnamed = ConnectError("unresolved", "cannot resolve host (x)", 0.0).poll_error("u@h:1")
    assert (unnamed.reason, str(unnamed)) == ("unreachable", "u@h:1: cannot resolve host (x)")
