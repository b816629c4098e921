"""fedgate.connection.Connection on real loopback sockets, on both event loops: what a stream driver relies on
(data that arrived is returned at once, time-outs, end of stream after the data, resets, flow control both
ways, the polite close) and what went wrong once (a close from another task while the driver is reading)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from OpenSSL import SSL

from fedgate import connection, tls
from fedgate.certs import TestCA
from fedgate.connection import Connection

HOST = "127.0.0.1"


def run(event_loop: str, main: Callable[[], Awaitable[None]]) -> None:
    if event_loop == "uvloop":
        if os.environ.get("CI") != "true":
            pytest.importorskip("uvloop")  # (scripts/test installs fedgate[fast]; in CI a missing uvloop fails)
        import uvloop

        uvloop.run(asyncio.wait_for(main(), 30))
    else:
        asyncio.run(asyncio.wait_for(main(), 30))


LOOPS = pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])


async def pair() -> tuple[Connection, socket.socket]:
    """Our Connection (accepted by a server, as the gateway's are) and the peer's plain blocking socket."""
    accepted: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    server = await asyncio.get_running_loop().create_server(
        lambda: Connection(on_connected=accepted.set_result), HOST, 0)
    port = server.sockets[0].getsockname()[1]
    peer = socket.create_connection((HOST, port))
    peer.setblocking(False)
    conn = await accepted
    server.close()
    return conn, peer


async def recv_all(peer: socket.socket, until_eof: bool = True, limit: float = 5.0) -> bytes:
    loop = asyncio.get_running_loop()
    out = bytearray()
    async with asyncio.timeout(limit):
        while True:
            chunk = await loop.sock_recv(peer, 65536)
            if not chunk:
                return bytes(out)
            out += chunk
            if not until_eof:
                return bytes(out)


@LOOPS
def test_what_arrived_is_read_in_order_and_then_the_end_of_stream(event_loop: str) -> None:
    async def main() -> None:
        conn, peer = await pair()
        peer.sendall(b"<a/>")
        peer.sendall(b"<b/>")
        await asyncio.sleep(0.05)  # both chunks are in before the first read
        got = b""
        while len(got) < 8:
            data = await conn.read(1)
            assert data is not None
            got += data
        assert got == b"<a/><b/>"
        peer.sendall(b"<c/>")
        peer.shutdown(socket.SHUT_WR)
        assert await conn.read(1) == b"<c/>"  # the data before the FIN first...
        assert await conn.read(1) is None  # ...then the end, at once, and again
        assert await conn.read(1) is None
        assert conn.stats.bytes_in == 12
        await conn.close()
        assert await recv_all(peer) == b""  # our FIN
        peer.close()

    run(event_loop, main)


@LOOPS
def test_a_read_larger_than_64k_comes_in_pieces(event_loop: str) -> None:
    async def main() -> None:
        conn, peer = await pair()
        blob = os.urandom(200_000)
        await asyncio.get_running_loop().sock_sendall(peer, blob)
        peer.shutdown(socket.SHUT_WR)
        got = bytearray()
        while (data := await conn.read(5)) is not None:
            assert len(data) <= 65536
            got += data
        assert got == blob
        await conn.close()
        peer.close()

    run(event_loop, main)


@LOOPS
def test_a_read_times_out_and_the_connection_stays_usable(event_loop: str) -> None:
    async def main() -> None:
        conn, peer = await pair()
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await conn.read(0.1)
        assert 0.08 <= time.monotonic() - started < 2
        peer.sendall(b"late")
        assert await conn.read(1) == b"late"
        peer.close()
        assert await conn.read(1) is None
        await conn.close()

    run(event_loop, main)


@LOOPS
def test_on_idle_is_called_once_after_a_quiet_spell(event_loop: str) -> None:
    async def main() -> None:
        conn, peer = await pair()
        calls: list[float] = []
        started = time.monotonic()

        async def send_later() -> None:
            await asyncio.sleep(0.3)
            peer.sendall(b"x")

        sender = asyncio.ensure_future(send_later())
        assert await conn.read(5, lambda: calls.append(time.monotonic() - started)) == b"x"
        await sender
        assert len(calls) == 1 and connection.HIBERNATE_AFTER_SECONDS * 0.8 <= calls[0] < 0.3
        with pytest.raises(TimeoutError):  # the remaining time-out still counts after the idle call
            await conn.read(0.2, lambda: calls.append(0.0))
        assert len(calls) == 2
        peer.close()
        await conn.close()

    run(event_loop, main)


@LOOPS
def test_a_reset_is_an_error_from_read(event_loop: str) -> None:
    async def main() -> None:
        conn, peer = await pair()
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()  # RST
        with pytest.raises(ConnectionResetError):
            await conn.read(5)
        await conn.close()  # (nothing to do, and no error)

    run(event_loop, main)


@LOOPS
def test_a_fast_peer_pauses_reading_and_loses_nothing(event_loop: str) -> None:
    """Not reading for a while must not buffer without bound in the process: the socket is paused past
    twice 64 KiB, and everything still arrives, in order, once reading resumes."""

    async def main() -> None:
        conn, peer = await pair()
        blob = os.urandom(32 * 1024 * 1024)  # more than the kernel's buffers on both sides hold
        sender = asyncio.ensure_future(asyncio.get_running_loop().sock_sendall(peer, blob))
        await asyncio.sleep(0.3)
        assert conn._reading_paused and not sender.done()  # we stopped reading, and so the peer is held up
        assert conn._buffered <= connection._PAUSE_AT + 262144  # (one more chunk of the loop's read size)
        got = bytearray()
        while len(got) < len(blob):
            data = await conn.read(5)
            assert data is not None
            got += data
        await sender
        assert got == blob
        peer.close()
        await conn.close()

    run(event_loop, main)


@LOOPS
def test_drain_waits_for_a_peer_that_does_not_read(event_loop: str) -> None:
    async def main() -> None:
        conn, peer = await pair()
        blob = os.urandom(16 * 1024 * 1024)
        conn.write(blob)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await conn.drain()
        draining = asyncio.ensure_future(conn.drain())
        got = await recv_all(peer, until_eof=False)
        while len(got) < len(blob):
            got += await recv_all(peer, until_eof=False)
        async with asyncio.timeout(5):
            await draining
        assert got == blob and conn.stats.bytes_out == len(blob)
        peer.close()
        await conn.close()

    run(event_loop, main)


@LOOPS
def test_close_sends_the_data_then_fin_and_waits_for_the_peers(event_loop: str) -> None:
    async def main() -> None:
        conn, peer = await pair()
        conn.write(b"</stream:stream>")
        closing = asyncio.ensure_future(conn.close())
        assert await recv_all(peer) == b"</stream:stream>"  # then our FIN
        await asyncio.sleep(0.1)
        assert not closing.done()  # lingering: the peer may still send (its close, a last stanza)
        peer.sendall(b"</stream:stream>")
        peer.shutdown(socket.SHUT_WR)
        async with asyncio.timeout(2):
            await closing
        assert conn.is_closing()
        peer.close()

    run(event_loop, main)


@LOOPS
def test_close_gives_up_on_a_silent_peer_after_the_linger(event_loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "LINGER_SECONDS", 0.2)

    async def main() -> None:
        conn, peer = await pair()
        started = time.monotonic()
        await conn.close()
        assert 0.15 <= time.monotonic() - started < 2
        assert await recv_all(peer) == b""
        peer.close()

    run(event_loop, main)


@LOOPS
def test_close_from_another_task_wakes_the_reading_driver(event_loop: str) -> None:
    """The driver waits in read() while a dialback answer (another task) closes the stream: the driver must
    see the end of the stream, and the close must not wait on a read it cannot make."""

    async def main() -> None:
        conn, peer = await pair()
        driver = asyncio.ensure_future(conn.read(None))
        await asyncio.sleep(0.05)
        async with asyncio.timeout(2):
            await conn.close()
            assert await driver is None
        peer.close()

    run(event_loop, main)


@LOOPS
def test_close_transport_wakes_the_reading_driver_at_once(event_loop: str) -> None:
    async def main() -> None:
        conn, peer = await pair()
        driver = asyncio.ensure_future(conn.read(None))
        await asyncio.sleep(0.05)
        conn.close_transport()
        async with asyncio.timeout(1):
            assert await driver is None
        conn.write(b"dropped")  # a closed connection takes writes and drops them, as the drivers expect
        assert conn.stats.bytes_out == 0
        peer.close()

    run(event_loop, main)


@LOOPS
def test_open_connection_reaches_a_listener(event_loop: str) -> None:
    async def main() -> None:
        listener = socket.create_server((HOST, 0))
        listener.setblocking(False)
        port = listener.getsockname()[1]
        conn = await connection.open_connection(HOST, port, local_addr=None)
        peer, _ = await asyncio.get_running_loop().sock_accept(listener)
        conn.write(b"hello")
        assert await recv_all(peer, until_eof=False) == b"hello"
        peer.close()
        assert await conn.read(2) is None
        await conn.close()
        listener.close()

    run(event_loop, main)


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> tuple[tls.TlsContext, Path]:
    work = tmp_path_factory.mktemp("connection-tls")
    ca = TestCA.create(work / "ca")
    files = ca.issue("gw.test", work)
    trust = tls.TrustAnchors(cafiles=(ca.cert_path,), use_system=False)
    return tls.server_context({"gw.test": tls.Credentials(files.chain, files.key)}, trust), ca.cert_path


async def _client_handshake(conn: Connection, peer: socket.socket, server: tls.TlsContext,
                            first_data: bytes) -> SSL.Connection:
    """A pyOpenSSL client on the peer's socket, through its Finished; ``first_data`` goes in the same send as
    the Finished, as a peer's restarted stream header often does."""
    loop = asyncio.get_running_loop()
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE, None)
    client = SSL.Connection(ctx, None)
    client.set_connect_state()
    client.set_tlsext_host_name(b"gw.test")
    conn.begin_tls(server, server_side=True, server_name=None)
    reading = asyncio.ensure_future(conn.read(5))
    while True:
        try:
            client.do_handshake()
            break
        except SSL.WantReadError:
            with contextlib.suppress(SSL.WantReadError):
                await loop.sock_sendall(peer, client.bio_read(65536))
            client.bio_write(await loop.sock_recv(peer, 65536))
    client.sendall(first_data)
    await loop.sock_sendall(peer, client.bio_read(65536))  # the Finished and the data, in one send
    assert await reading == first_data and conn.tls_just_completed
    return client


def _records(data: bytes) -> int:
    count = 0
    while data:
        assert len(data) >= 5
        data = data[5 + int.from_bytes(data[3:5], "big"):]
        count += 1
    return count


@LOOPS
def test_the_end_of_a_tls_handshake_leaves_with_the_next_write(
    event_loop: str, credentials: tuple[tls.TlsContext, Path]
) -> None:
    """The server's session tickets, produced by the client's Finished, go out in the same write as the answer
    to the data that came with it; nothing is lost or reordered (the client reads the answer)."""
    async def main() -> None:
        conn, peer = await pair()
        client = await _client_handshake(conn, peer, credentials[0], b"<stream:stream>")
        await asyncio.sleep(0.05)
        with pytest.raises(BlockingIOError):
            peer.recv(65536)  # the tickets are held...
        conn.write(b"<stream:stream><features/>")
        wire = await recv_all(peer, until_eof=False)  # ...and leave with the answer, in one write
        assert _records(wire) >= 2
        client.bio_write(wire)
        assert client.recv(65536) == b"<stream:stream><features/>"
        peer.close()
        await conn.close()

    run(event_loop, main)


@LOOPS
def test_what_the_handshake_left_goes_out_before_a_read_waits(
    event_loop: str, credentials: tuple[tls.TlsContext, Path]
) -> None:
    async def main() -> None:
        conn, peer = await pair()
        client = await _client_handshake(conn, peer, credentials[0], b"<x/>")
        reading = asyncio.ensure_future(conn.read(5))  # the driver had nothing to write: it reads again
        wire = await recv_all(peer, until_eof=False)
        assert wire and _records(wire) >= 1  # the session tickets
        client.bio_write(wire)
        with pytest.raises(SSL.WantReadError):
            client.recv(65536)  # (tickets only: no application data)
        client.sendall(b"<y/>")
        await asyncio.get_running_loop().sock_sendall(peer, client.bio_read(65536))
        assert await reading == b"<y/>"
        peer.close()
        await conn.close()

    run(event_loop, main)
