"""One TCP connection for the gateway's streams: an :class:`asyncio.Protocol` with an optional TLS session over
memory BIOs, plaintext in and out.

It is what ``asyncio.StreamReader``/``StreamWriter`` would give, with less in between: data that has already
arrived is returned without waiting, a read's time-out is one timer handle (``asyncio.timeout`` costs about 7
microseconds, several times per authentication), and no reader or writer objects are built per connection.
Behaviour on errors is the streams' own: a connection lost with an error raises it from :meth:`read` and
:meth:`drain`, and end of stream is ``None`` once what arrived before it has been read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol, cast

from .s2s import TlsInfo
from .tls import TlsContext, TlsSession

_READ_SIZE = 65536
# Reading from the socket stops while this much is waiting to be read (a peer faster than we consume), as
# StreamReader does at twice its 64 KiB limit.
_PAUSE_AT = 2 * _READ_SIZE
# After our </stream:stream> and FIN, what the peer still sends is read (and dropped) until its FIN, at most
# this long: closing with unread input makes the kernel send a reset, and the peer's kernel would then discard
# our stream error.
LINGER_SECONDS = 1.0
# An authenticated stream that has received nothing for this long frees its XML parser's state (about 13 kB)
# until the next bytes arrive, and a TLS 1.3 one hands its records over from OpenSSL to fedgate.tls13 (some
# 40 kB freed; TlsSession.hibernate). Waking the parser costs about 4 microseconds and a hibernated TLS session
# protects a record in about 5, so the delay can be short: streams set up in a burst otherwise all hold their
# parser and SSL object at once, and the memory they then free stays fragmented. bench/, 1,000 idle TLS
# streams: 22.6 kB each with 0.25 s, 15.4 kB with 0.05 s (relay throughput unchanged).
HIBERNATE_AFTER_SECONDS = 0.05


class ByteCounters(Protocol):
    """Where the bytes on the wire are counted (``GatewayStats``)."""

    bytes_in: int
    bytes_out: int


class _Counters:
    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0


class Connection(asyncio.Protocol):
    """A socket's bytes for one stream driver (a coroutine): :meth:`read` waits for plaintext, :meth:`write`
    sends it, :meth:`close` ends the connection politely. Built by the loop's protocol factory;
    ``on_connected`` (accepted connections) starts the driver."""

    __slots__ = ("_buffered", "_chunks", "_closed", "_drain_waiter", "_eof", "_exception", "_lost", "_on_connected",
                 "_reading_paused", "_tls_held", "_waiter", "_writing_paused", "stats", "tls", "tls_just_completed",
                 "transport")

    def __init__(self, stats: ByteCounters | None = None,
                 on_connected: Callable[[Connection], object] | None = None) -> None:
        self.stats: ByteCounters = stats if stats is not None else _Counters()
        self.transport: asyncio.Transport | None = None
        self.tls: TlsSession | None = None
        self.tls_just_completed = False
        self._tls_held = False  # TLS records from the end of the handshake, not written yet (see read())
        self._on_connected = on_connected
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._eof = False
        self._lost = False
        self._exception: BaseException | None = None
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (uvloop's are not asyncio.Transport subclasses)
        if self._on_connected is not None:
            self._on_connected(self)
            self._on_connected = None

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _PAUSE_AT and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return True  # keep the transport: our own </stream:stream> and FIN may still have to go

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = self._eof = True
        if exc is not None:
            self._exception = exc
        self._wake()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            if exc is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(exc)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- raw bytes ---------------------------------------------------------------------------------------------
    def _take(self) -> bytes:
        """At most _READ_SIZE of what has arrived."""
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if len(data) > _READ_SIZE:
            self._chunks = [data[_READ_SIZE:]]
            data = data[:_READ_SIZE]
        else:
            self._chunks = []
        self._buffered -= len(data)
        if (self._reading_paused and self._buffered <= _READ_SIZE and self.transport is not None
                and not self.transport.is_closing()):
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    def _timed_out(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError())

    async def _read_raw(self, timeout: float | None) -> bytes:
        """Bytes from the socket, b"" at end of stream; TimeoutError after ``timeout`` seconds of nothing."""
        if self._exception is not None:
            raise self._exception
        if not self._chunks and not self._eof:
            if self._waiter is not None:  # (as StreamReader: close() from another task then skips its linger)
                raise RuntimeError("another coroutine is already reading this connection")
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, self._timed_out, waiter) if timeout is not None else None
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
                if self._waiter is waiter:
                    self._waiter = None
            if self._exception is not None:
                raise self._exception
        return self._take() if self._chunks else b""

    # -- plaintext ---------------------------------------------------------------------------------------------
    def is_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def write(self, plaintext: bytes) -> None:
        if not plaintext or self.is_closing():
            return
        if self.tls is not None and self.tls.handshake_complete:
            self.tls.send(plaintext)
            self._tls_held = False  # (it leaves now, ahead of this)
            self._write_wire(self.tls.data_to_send())
        else:
            self._write_wire(plaintext)

    def _write_wire(self, data: bytes) -> None:
        """Bytes as they go on the socket (TLS records once TLS is on): what ``bytes_out`` counts, like
        ``bytes_in``."""
        if data and self.transport is not None:
            self.stats.bytes_out += len(data)
            self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark (as StreamWriter.drain)."""
        if self._exception is not None:
            raise self._exception
        if self._lost:
            raise ConnectionResetError("Connection lost")
        if not self._writing_paused:
            return
        waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
        await waiter

    def begin_tls(self, context: TlsContext, *, server_side: bool, server_name: str | None) -> None:
        self.tls = TlsSession(context, server_side=server_side, server_name=server_name)
        if not server_side:
            self.tls.start()
            self._write_wire(self.tls.data_to_send())

    async def read(self, timeout: float | None, on_idle: Callable[[], object] | None = None) -> bytes | None:
        """Plaintext from the peer; ``None`` at end of stream. Handshake records are answered here.

        ``on_idle`` is called once if nothing arrives for :data:`HIBERNATE_AFTER_SECONDS` (within ``timeout``);
        the same timer serves both, so a busy stream pays nothing for it."""
        if self._tls_held:  # (before waiting: what the handshake left is not held up by a quiet peer)
            self._tls_held = False
            assert self.tls is not None
            self._write_wire(self.tls.data_to_send())
        while True:
            idle_first = on_idle is not None and (timeout is None or timeout > HIBERNATE_AFTER_SECONDS)
            try:
                raw = await self._read_raw(HIBERNATE_AFTER_SECONDS if idle_first else timeout)
            except TimeoutError:
                if not idle_first or on_idle is None:
                    raise
                on_idle()
                on_idle = None
                if self.tls is not None:
                    self.tls.hibernate()  # (TLS 1.3: hands record protection over from OpenSSL; see tls.py)
                timeout = None if timeout is None else timeout - HIBERNATE_AFTER_SECONDS
                continue
            if not raw:
                return None
            self.stats.bytes_in += len(raw)
            if self.tls is None:
                return raw
            was_complete = self.tls.handshake_complete
            try:
                plain = self.tls.receive_data(raw)
            except BaseException:
                self._write_wire(self.tls.data_to_send())  # (an alert, for one)
                raise
            if not was_complete and self.tls.handshake_complete:
                # What the end of the handshake produced (a server's session tickets, a client's Finished) goes
                # out with the driver's next write, the restarted stream's header: one write instead of two.
                # The next read() sends it otherwise.
                self._tls_held = True
                self.tls_just_completed = True
                return plain
            self._write_wire(self.tls.data_to_send())
            if plain or self.tls.closed_by_peer:
                return plain if plain else None

    def tls_info(self) -> TlsInfo:
        assert self.tls is not None
        return TlsInfo(self.tls.version, self.tls.cipher, self.tls.peer_certificate(keep_certificate=False))

    def close_transport(self) -> None:
        """Let the socket go now (what is buffered is still flushed); a driver waiting in :meth:`read` wakes
        to the end of the stream."""
        if self.transport is not None:
            self.transport.close()

    async def close(self) -> None:
        """Our FIN after what we wrote, the peer's FIN awaited (at most LINGER_SECONDS), then the socket."""
        transport = self.transport
        if transport is None:
            return
        with contextlib.suppress(Exception):
            if self.tls is not None and self.tls.handshake_complete:
                self.tls.close()
                self._write_wire(self.tls.data_to_send())
            await self.drain()
            if transport.can_write_eof():
                transport.write_eof()
            if not self._eof:  # (the usual end: the peer's FIN came with its </stream:stream>)
                loop = asyncio.get_running_loop()
                until = loop.time() + LINGER_SECONDS
                while await self._read_raw(max(0.0, until - loop.time())):
                    pass
        if self._lost:
            return
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
        transport.close()
        with contextlib.suppress(Exception):
            if transport.get_write_buffer_size() == 0:
                await self._closed  # nothing left to flush: the transport closes at once
            else:
                async with asyncio.timeout(2):  # a peer that does not read
                    await asyncio.shield(self._closed)


async def open_connection(host: str, port: int, *, local_addr: tuple[str, int] | None,
                          stats: ByteCounters | None = None) -> Connection:
    """A TCP connection to ``host:port`` (from ``local_addr`` if given)."""
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: Connection(stats), host, port, local_addr=local_addr)
    return conn


__all__ = ["HIBERNATE_AFTER_SECONDS", "LINGER_SECONDS", "ByteCounters", "Connection", "open_connection"]
