"""Sans-IO TLS over memory BIOs (pyOpenSSL): contexts, sessions, and the peer certificate's status.

Why pyOpenSSL and not :mod:`ssl`: an XMPP server asks the peer for a certificate but must finish the handshake
whatever the peer sends, record whether the certificate is valid, and otherwise go on to Server Dialback. The
standard module aborts the handshake when a requested certificate does not chain. Here the verify callback
records OpenSSL's verdict (the first error and its depth) and always lets the handshake go on; afterwards
:meth:`TlsSession.peer_certificate` says whether the chain validated against our trust anchors (with expiry and
key purpose: OpenSSL checks ``serverAuth`` on a server's certificate and ``clientAuth`` on a client's) and, with
:mod:`fedgate.identity`, for which domains it is valid.

The I/O layer only shovels bytes: socket bytes into :meth:`TlsSession.receive_data`, which returns plaintext,
and :meth:`TlsSession.data_to_send` out to the socket after every call.

Contexts refuse renegotiation (a peer's attempt is a :class:`TlsError`), allow TLS 1.2 and newer only, and
disable compression.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL, crypto

try:  # pyOpenSSL's binding: no public way to ask how many bytes a memory BIO holds
    from OpenSSL._util import ffi as _ffi
    from OpenSSL._util import lib as _lib

    _MEM_DATA = _ffi.new("char **")  # BIO_get_mem_data's out-parameter; its value is never read
except ImportError:  # pragma: no cover
    _lib = None

from fedgate.identity import CertificateNames, certificate_names, names_match_domain, normalize_domain
from fedgate.tls13 import SUPPORTED_SUITES, Tls13RecordError, Tls13Records

__all__ = [
    "CertificateStatus",
    "Credentials",
    "TlsContext",
    "TlsError",
    "TlsSession",
    "TrustAnchors",
    "client_context",
    "server_context",
]

# TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are OpenSSL's defaults (all AEAD).
_TLS12_CIPHERS = b"ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL"
# No session resumption (OP_NO_TICKET, no cache): a resumed session skips certificate verification, and the
# peer's status must come from this handshake's verify callback.
_OPTIONS = SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION | SSL.OP_CIPHER_SERVER_PREFERENCE | SSL.OP_NO_TICKET
_NOT_VERIFIED = -1  # error_code when no verification ran in this handshake
_ALERT_NO_RENEGOTIATION = 100  # RFC 5246 section 7.2.2
_READ_SIZE = 65536
_WRITE_CHUNK = 16384


class TlsError(Exception):
    """The TLS connection failed: handshake failure, a fatal alert, a renegotiation attempt, misuse.

    After one, :meth:`TlsSession.data_to_send` may still hold an alert for the peer; send it, then close.
    """


@dataclass(frozen=True)
class TrustAnchors:
    """Certificates that root valid chains: CA files (PEM) and, unless switched off, the system store."""

    cafiles: tuple[Path, ...] = ()
    use_system: bool = True


@dataclass(frozen=True)
class Credentials:
    """Our certificate: a PEM chain file (leaf first, then intermediates) and its private key."""

    cert_chain: Path
    key: Path


@dataclass(frozen=True)
class CertificateStatus:
    """What the peer presented and what OpenSSL thought of the chain.

    ``error`` is OpenSSL's verification error text ("certificate has expired", "self-signed certificate",
    "unsuitable certificate purpose", ...) when a certificate was presented and did not validate; ``None``
    when it validated or when there was none (``presented`` False).
    """

    presented: bool
    chain_valid: bool
    error: str | None = None
    names: CertificateNames | None = None
    not_after: datetime.datetime | None = None
    error_code: int | None = None  # X509_V_ERR_* of the first failure
    error_depth: int | None = None  # 0 = the peer's own certificate
    # The parsed certificate itself, for reports (probe); None when not asked for (a live stream keeps only the
    # names: the object with its parsed extensions costs some 3 kB per stream).
    certificate: x509.Certificate | None = field(default=None, repr=False, compare=False)

    def valid_for(self, domain: str) -> bool:
        """Whether this authenticates the peer as ``domain``: a valid chain and a matching identity."""
        if not (self.presented and self.chain_valid and self.names is not None):
            return False
        return _names_match(self.names, domain)


# A partner's servers present the same certificate on each of their many connections: what is read out of one
# (names, expiry) and whether those names match a domain are remembered, by DER bytes and by (names, domain).
# Only what follows from the bytes alone is cached; whether the chain validated comes from each handshake.
_CERTIFICATE_CACHE_SIZE = 1024


@functools.lru_cache(maxsize=_CERTIFICATE_CACHE_SIZE)
def _names_match(names: CertificateNames, domain: str) -> bool:
    return names_match_domain(names, domain)


@functools.lru_cache(maxsize=_CERTIFICATE_CACHE_SIZE)
def _read_certificate(der: bytes) -> tuple[CertificateNames, datetime.datetime]:
    cert = x509.load_der_x509_certificate(der)
    return certificate_names(cert), cert.not_valid_after_utc


class TlsContext:
    """Settings shared by many sessions. Build with :func:`server_context` or :func:`client_context`."""

    def __init__(
        self, default: SSL.Context, *, server_side: bool, by_domain: Mapping[str, SSL.Context] | None = None
    ) -> None:
        self._default = default
        self._by_domain = dict(by_domain or {})
        self.server_side = server_side

    @property
    def domains(self) -> tuple[str, ...]:
        """The domains a server context has credentials for (normalised)."""
        return tuple(self._by_domain)

    def _for_server_name(self, server_name: str | None) -> SSL.Context | None:
        if server_name is None:
            return None
        try:
            return self._by_domain.get(normalize_domain(server_name))
        except ValueError:
            return None


def _error_text(error: SSL.Error) -> str:
    parts: list[str] = []
    for item in error.args[0] if error.args and isinstance(error.args[0], list) else []:
        if isinstance(item, tuple) and item and item[-1]:
            parts.append(str(item[-1]))
    if parts:
        return "; ".join(parts)
    return " ".join(str(a) for a in error.args) or type(error).__name__


def _verify_error_string(code: int) -> str:
    if code == _NOT_VERIFIED:
        return "certificate not verified in this handshake"
    try:
        from OpenSSL._util import ffi, lib  # pyOpenSSL's binding; no public wrapper for this string

        text = ffi.string(lib.X509_verify_cert_error_string(code))
        return text.decode("ascii", "replace") if isinstance(text, bytes) else str(text)
    except Exception:  # pragma: no cover - only if the private binding moves
        return f"certificate verify error {code}"


def _base_context(trust: TrustAnchors, credentials: Credentials | None, *, server_side: bool) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_options(_OPTIONS)
    ctx.set_cipher_list(_TLS12_CIPHERS)
    if trust.use_system:
        ctx.set_default_verify_paths()
    for cafile in trust.cafiles:
        try:
            ctx.load_verify_locations(str(cafile))
        except SSL.Error as e:
            raise TlsError(f"{cafile}: cannot load trust anchors: {_error_text(e)}") from e
    # Request the peer's certificate, never fail the handshake over it (no VERIFY_FAIL_IF_NO_PEER_CERT; the
    # callback says yes to everything and records the verdict on the session).
    ctx.set_verify(SSL.VERIFY_PEER, _verify_callback)
    if credentials is not None:
        try:
            ctx.use_certificate_chain_file(str(credentials.cert_chain))
            ctx.use_privatekey_file(str(credentials.key))
            ctx.check_privatekey()
        except SSL.Error as e:
            raise TlsError(f"{credentials.cert_chain}, {credentials.key}: cannot load: {_error_text(e)}") from e
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    # The application traffic secrets, for handing an idle TLS 1.3 connection over to fedgate.tls13
    # (TlsSession.hibernate). They stay in this process, as OpenSSL's own copies do; nothing writes them out.
    ctx.set_keylog_callback(_keylog_callback)
    # Free the record layer's read and write buffers (some 34 KiB) whenever they are empty: an idle S2S stream
    # then holds about 30 KiB less (bench/, BENCHMARKS.md).
    ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
    return ctx


def _bio_pending(conn: SSL.Connection, bio_name: str = "_from_ssl") -> int:
    """Bytes waiting in the connection's outgoing memory BIO (``_into_ssl``: the incoming one, not yet read by
    OpenSSL); -1 when that cannot be asked (then read and see)."""
    bio = getattr(conn, bio_name, None)
    if bio is None or _lib is None:  # pragma: no cover - only if pyOpenSSL's private binding moves
        return -1
    return int(_lib.BIO_get_mem_data(bio, _MEM_DATA))


_CLIENT_SECRET = b"CLIENT_TRAFFIC_SECRET_0 "
_SERVER_SECRET = b"SERVER_TRAFFIC_SECRET_0 "


def _keylog_callback(conn: SSL.Connection, line: bytes) -> None:
    if not line.startswith((_CLIENT_SECRET, _SERVER_SECRET)):
        return
    session = conn.get_app_data()
    if isinstance(session, TlsSession):
        session._record_secret(line)


class _RecordCounter:
    """Counts the TLS records in a byte stream (by their 5-byte headers), for the sequence numbers a
    :class:`~fedgate.tls13.Tls13Records` taking over a connection must start from."""

    __slots__ = ("_head", "_need", "records")

    def __init__(self) -> None:
        self.records = 0
        self._need = 0  # body bytes still to come of the record being read
        self._head = b""  # a record header split between two chunks

    @property
    def at_boundary(self) -> bool:
        return self._need == 0 and not self._head

    def feed(self, data: bytes) -> None:
        pos, size = 0, len(data)
        if self._head:
            missing = 5 - len(self._head)
            head = self._head + data[:missing]
            if len(head) < 5:
                self._head = head
                return
            self._head, pos = b"", missing
            self._need = head[3] << 8 | head[4]
            if self._need == 0:
                self.records += 1
        if self._need:
            if size - pos < self._need:
                self._need -= size - pos
                return
            pos += self._need
            self._need = 0
            self.records += 1
        records = self.records
        while pos + 5 <= size:
            end = pos + 5 + (data[pos + 3] << 8 | data[pos + 4])
            if end > size:
                self._need = end - size
                break
            records += 1
            pos = end
        else:
            if pos < size:
                self._head = data[pos:]
        self.records = records


def _verify_callback(conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int) -> bool:
    session = conn.get_app_data()
    if isinstance(session, TlsSession):
        session._record_verify(errno, depth, bool(ok))
    return True


def server_context(
    credentials: Mapping[str, Credentials], trust: TrustAnchors, *, default_domain: str | None = None
) -> TlsContext:
    """A context for accepting connections: the client's SNI picks the credentials by domain (``default_domain``,
    else the first, when the client names none or an unknown one); the client's certificate is requested but
    optional."""
    if not credentials:
        raise ValueError("a server context needs credentials for at least one domain")
    by_domain = {normalize_domain(d): _base_context(trust, c, server_side=True) for d, c in credentials.items()}
    default_key = normalize_domain(default_domain) if default_domain is not None else next(iter(by_domain))
    if default_key not in by_domain:
        raise ValueError(f"no credentials for the default domain {default_domain!r}")
    default = by_domain[default_key]
    for ctx in by_domain.values():
        ctx.set_tlsext_servername_callback(_servername_callback)
    return TlsContext(default, server_side=True, by_domain=by_domain)


def _servername_callback(conn: SSL.Connection) -> None:
    session = conn.get_app_data()
    if not isinstance(session, TlsSession):
        return
    raw = conn.get_servername()
    name = raw.decode("ascii", "replace") if raw else None
    session.server_name = name
    chosen = session._context._for_server_name(name)
    if chosen is not None:
        conn.set_context(chosen)


def client_context(credentials: Credentials | None, trust: TrustAnchors) -> TlsContext:
    """A context for connecting out; ``credentials`` is the certificate offered when the server asks."""
    return TlsContext(_base_context(trust, credentials, server_side=False), server_side=False)


class TlsSession:
    """One TLS connection without sockets: TLS records in and out, plaintext in and out.

    An idle TLS 1.3 connection can be *hibernated* (:meth:`hibernate`): its record protection is handed over
    from OpenSSL to :class:`fedgate.tls13.Tls13Records`, built from the application traffic secrets (OpenSSL's
    keylog callback) and the number of records already protected each way (counted here from the record
    headers), and OpenSSL's ``SSL`` object, some 40 kB after a handshake with a client certificate, is freed.
    The session works on as before; only the peer's certificate chain is gone (its status stays).
    """

    def __init__(self, context: TlsContext, *, server_side: bool, server_name: str | None = None) -> None:
        if server_side != context.server_side:
            raise ValueError("a server session needs a server context, a client session a client context")
        self._context = context
        self._server_side = server_side
        self._conn: SSL.Connection | None = SSL.Connection(context._default, None)
        self._conn.set_app_data(self)
        self._records: Tls13Records | None = None  # after hibernate()
        self.handshake_complete = False
        self.closed_by_peer = False
        self._closed = False
        self._failed: str | None = None
        self._renegotiation = False
        self._verify_called = False
        self._verify_error: tuple[int, int] | None = None
        # For hibernate(): the TLS 1.3 application traffic secrets, and records counted since the handshake.
        self._client_secret: bytes | None = None
        self._server_secret: bytes | None = None
        self._in_records: _RecordCounter | None = None
        self._out_records: _RecordCounter | None = None
        self._out_skip = 0  # handshake bytes at the head of the outgoing BIO, not to be counted
        self._rekeyed = False  # a post-handshake message (KeyUpdate) changed OpenSSL's keys: never hibernate
        self._version: str | None = None
        self._cipher: str | None = None
        self._peer_status: CertificateStatus | None = None
        # Server side: the SNI the client asked for. Client side: the name we asked for.
        self.server_name: str | None = None
        if server_side:
            self._conn.set_accept_state()
        else:
            self._conn.set_connect_state()
            if server_name is not None:
                self.server_name = server_name
                self._conn.set_tlsext_host_name(normalize_domain(server_name).encode("ascii"))

    def _ssl(self) -> SSL.Connection:
        if self._conn is None:  # (every caller checks _records first)
            raise TlsError("the TLS session is hibernated")
        return self._conn

    # -- callbacks -------------------------------------------------------------------------------------------

    def _record_verify(self, errno: int, depth: int, ok: bool) -> None:
        self._verify_called = True
        if not ok and self._verify_error is None:
            self._verify_error = (errno, depth)

    def _record_secret(self, line: bytes) -> None:
        try:
            secret = bytes.fromhex(line.split(b" ")[2].decode("ascii"))
        except (IndexError, ValueError):  # pragma: no cover - OpenSSL's format is fixed
            return
        if line.startswith(_CLIENT_SECRET):
            self._client_secret = secret
        else:
            self._server_secret = secret

    def _info(self, conn: SSL.Connection, where: int, ret: int) -> None:
        if where & SSL.SSL_CB_WRITE_ALERT and ret & 0xFF == _ALERT_NO_RENEGOTIATION:
            self._renegotiation = True  # OpenSSL refused the peer's renegotiation (OP_NO_RENEGOTIATION)
        elif where & SSL.SSL_CB_LOOP and b"key update" in conn.get_state_string():
            self._rekeyed = True

    # -- driving ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Client side: begin the handshake (the ClientHello is then in :meth:`data_to_send`)."""
        if self._server_side:
            raise TlsError("the server side waits for the ClientHello")
        self._handshake()

    def receive_data(self, data: bytes) -> bytes:
        """Feed TLS records from the peer; returns the application plaintext they carried (maybe ``b''``).

        Drives the handshake; plaintext that arrives with the last handshake bytes is returned at once.
        """
        self._check_usable()
        if self._records is not None:
            try:
                plain = self._records.receive_data(data)
            except Tls13RecordError as e:
                raise self._fail(str(e)) from e
            self.closed_by_peer = self._records.closed_by_peer
            return plain
        conn = self._ssl()
        if data:
            conn.bio_write(data)
            if self._in_records is not None:
                self._in_records.feed(data)
        if not self.handshake_complete:
            if not self._handshake():
                return b""
            if self._in_records is not None:  # what came after the peer's last handshake record
                unread = _bio_pending(conn, "_into_ssl")
                if 0 < unread <= len(data):
                    self._in_records.feed(data[-unread:])
                elif unread != 0:
                    self._in_records = None  # cannot tell: this session will not hibernate
        chunks: list[bytes] = []
        while not self.closed_by_peer:
            try:
                chunk = conn.recv(_READ_SIZE)
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                self.closed_by_peer = True
                break
            except SSL.Error as e:
                raise self._fail(_error_text(e)) from e
            if not chunk:
                break
            chunks.append(chunk)
            if conn.pending() == 0 and _bio_pending(conn, "_into_ssl") == 0:
                break  # all read: spares the WantReadError (an exception) another recv would raise
        if self._renegotiation:
            raise self._fail("the peer attempted TLS renegotiation")
        return b"".join(chunks)

    def _handshake(self) -> bool:
        conn = self._ssl()
        before = _bio_pending(conn)
        try:
            conn.do_handshake()
        except SSL.WantReadError:
            return False
        except SSL.ZeroReturnError as e:
            self.closed_by_peer = True
            raise self._fail("the peer closed the connection during the handshake") from e
        except SSL.Error as e:
            raise self._fail(_error_text(e)) from e
        self.handshake_complete = True
        # Only now: what it watches for comes after the handshake, and during one it would run some twenty
        # times (a Python call each).
        conn.set_info_callback(self._info)
        self._version, self._cipher = conn.get_protocol_version_name(), conn.get_cipher_name()
        if (self._version == "TLSv1.3" and self._cipher in SUPPORTED_SUITES and before >= 0
                and self._client_secret is not None and self._server_secret is not None):
            # Records under the application keys start: for a server, after what it wrote before this call
            # (its Finished went out with its first flight; this call wrote only tickets); for a client, after
            # this call's output (its Finished).
            self._in_records, self._out_records = _RecordCounter(), _RecordCounter()
            self._out_skip = before if self._server_side else _bio_pending(conn)
        return True

    def send(self, plaintext: bytes) -> None:
        """Encrypt application data (after the handshake); the records are then in :meth:`data_to_send`."""
        self._check_usable()
        if not self.handshake_complete:
            raise TlsError("cannot send application data before the TLS handshake completes")
        if self._records is not None:
            try:
                self._records.send(plaintext)
            except Tls13RecordError as e:
                raise self._fail(str(e)) from e
            return
        conn = self._ssl()
        if len(plaintext) <= _WRITE_CHUNK:  # the usual case: one stanza, one record
            try:
                conn.sendall(plaintext)
            except SSL.Error as e:
                raise self._fail(_error_text(e)) from e
            return
        view = memoryview(plaintext)
        while view:
            try:
                sent = conn.send(view[:_WRITE_CHUNK])
            except SSL.Error as e:
                raise self._fail(_error_text(e)) from e
            view = view[sent:]

    def data_to_send(self) -> bytes:
        """TLS records to write to the peer (handshake, application data, alerts, close_notify)."""
        if self._records is not None:
            return self._records.data_to_send()
        conn = self._ssl()
        pending = _bio_pending(conn)
        if pending == 0:  # nothing to send: no exception raised and caught on every call
            return b""
        chunks: list[bytes] = []
        while True:
            try:
                chunk = conn.bio_read(max(pending, _READ_SIZE))
            except SSL.WantReadError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            pending = _bio_pending(conn)
            if pending == 0:
                break
        out = b"".join(chunks)
        if self._out_records is not None:
            if self._out_skip:
                skip = min(self._out_skip, len(out))
                self._out_skip -= skip
                self._out_records.feed(out[skip:])
            else:
                self._out_records.feed(out)
        return out

    def hibernate(self) -> bool:
        """Free OpenSSL's state of an idle TLS 1.3 connection (see the class); True if the session is now
        hibernated. Only at a quiet moment: no partial record either way, nothing unread or unsent, and no
        KeyUpdate seen (the counted sequence numbers would be wrong). TLS 1.2 sessions stay as they are."""
        if self._records is not None:
            self._records.release()  # idle again: its cipher contexts go too
            return True
        conn = self._conn
        if (conn is None or self._failed is not None or self._closed or self.closed_by_peer
                or self._renegotiation or self._rekeyed or self._in_records is None or self._out_records is None
                or self._client_secret is None or self._server_secret is None or self._cipher is None
                or not self._in_records.at_boundary or not self._out_records.at_boundary or self._out_skip
                or _bio_pending(conn) != 0 or _bio_pending(conn, "_into_ssl") != 0 or conn.pending() != 0):
            return False
        if self._peer_status is None:
            self._peer_status = self.peer_certificate(keep_certificate=False)
        read, write = ((self._client_secret, self._server_secret) if self._server_side
                       else (self._server_secret, self._client_secret))
        self._records = Tls13Records(self._cipher, read_secret=read, write_secret=write,
                                     read_seq=self._in_records.records, write_seq=self._out_records.records)
        self._records.release()
        # Drop every reference to the connection (app data and the info callback point back at us), so that
        # pyOpenSSL frees the SSL object now rather than at the next cycle collection.
        conn.set_app_data(None)
        conn.set_info_callback(lambda *args: None)
        self._conn = None
        self._in_records = self._out_records = None
        self._client_secret = self._server_secret = None
        return True

    @property
    def hibernated(self) -> bool:
        return self._records is not None

    def close(self) -> None:
        """Send close_notify (into :meth:`data_to_send`). Idempotent; no answer from the peer is awaited."""
        if self._closed or self._failed is not None:
            self._closed = True
            return
        self._closed = True
        if self._records is not None:
            self._records.close()
            return
        with contextlib.suppress(SSL.Error):  # nothing more to say to a peer we cannot talk to
            self._ssl().shutdown()

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise TlsError(f"the TLS session has failed: {self._failed}")
        if self._closed:
            raise TlsError("the TLS session is closed")

    def _fail(self, reason: str) -> TlsError:
        self._failed = reason
        return TlsError(reason)

    # -- what was negotiated ---------------------------------------------------------------------------------

    @property
    def version(self) -> str | None:
        """"TLSv1.3", "TLSv1.2"; None before the handshake completes."""
        return self._version if self.handshake_complete else None

    @property
    def cipher(self) -> str | None:
        """The OpenSSL name of the cipher suite, e.g. "TLS_AES_256_GCM_SHA384"; None before the handshake."""
        return self._cipher if self.handshake_complete else None

    def peer_certificate(self, *, keep_certificate: bool = True) -> CertificateStatus:
        """The peer's certificate and whether its chain validated (meaningful once the handshake completes).

        ``keep_certificate=False`` leaves the parsed certificate out of the status (its names stay). A
        hibernated session has only the status it had then, without the certificate."""
        if self._conn is None and self._peer_status is not None:
            return self._peer_status
        peer = self._ssl().get_peer_certificate()
        if peer is None:
            return CertificateStatus(presented=False, chain_valid=False)
        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, peer)
        names, not_after = _read_certificate(der)
        error = self._verify_error
        if error is None and not self._verify_called:  # cannot happen with VERIFY_PEER; never call it valid
            error = (_NOT_VERIFIED, 0)
        return CertificateStatus(
            presented=True,
            chain_valid=error is None,
            error=None if error is None else _verify_error_string(error[0]),
            names=names,
            not_after=not_after,
            error_code=None if error is None else error[0],
            error_depth=None if error is None else error[1],
            certificate=x509.load_der_x509_certificate(der) if keep_certificate else None,
        )

    def peer_chain_der(self) -> list[bytes]:
        """The certificates the peer sent, DER, its own first (as sent; not the verified path). Not kept by a
        hibernated session (TlsError)."""
        conn = self._ssl()
        chain = conn.get_peer_cert_chain(as_cryptography=True) or []
        der = [c.public_bytes(Encoding.DER) for c in chain]
        if self._server_side:  # OpenSSL leaves the client's own certificate out of the server's list
            leaf = conn.get_peer_certificate(as_cryptography=True)
            if leaf is not None:
                der.insert(0, leaf.public_bytes(Encoding.DER))
        return der
