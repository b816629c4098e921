"""A sans-IO TLS 1.3 record layer for a connection whose handshake is already done.

An idle server-to-server stream hands its TLS connection over from OpenSSL to this module so that the large
OpenSSL ``SSL`` object can be freed: given the current application traffic secrets and how many records were
already protected with them, :class:`Tls13Records` protects and unprotects the records from then on.

Of RFC 8446 it implements: the record layer (5.1 framing, 5.2 TLSInnerPlaintext with padding, 5.3 per-record
nonce, 5.4 record padding, 5.5 the sequence number limit), the traffic key calculation (7.1 HKDF-Expand-Label,
7.2 "traffic upd", 7.3 key and iv), KeyUpdate (4.6.3), the NewSessionTicket a client may still receive (4.6.1;
ignored), and alerts (6: closure alerts 6.1, error alerts 6.2). No handshake, no 0-RTT, no post-handshake
authentication (a CertificateRequest is an unexpected_message).
"""

from __future__ import annotations

from typing import Final, TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

__all__ = ["SUPPORTED_SUITES", "Tls13RecordError", "Tls13Records", "hkdf_expand_label"]

_Aead: TypeAlias = AESGCM | ChaCha20Poly1305

# suite name (as OpenSSL spells it) -> (AEAD class, hash, key length); the iv is 12 bytes and the tag 16 for all.
_SUITES: Final[dict[str, tuple[type[_Aead], hashes.HashAlgorithm, int]]] = {
    "TLS_AES_128_GCM_SHA256": (AESGCM, hashes.SHA256(), 16),
    "TLS_AES_256_GCM_SHA384": (AESGCM, hashes.SHA384(), 32),
    "TLS_CHACHA20_POLY1305_SHA256": (ChaCha20Poly1305, hashes.SHA256(), 32),
}
SUPPORTED_SUITES: Final[frozenset[str]] = frozenset(_SUITES)

_IV_LENGTH: Final = 12
_TAG_LENGTH: Final = 16
_MAX_PLAINTEXT: Final = 2**14
_MAX_CIPHERTEXT: Final = 2**14 + 256
_SEQ_LIMIT: Final = 2**64  # 5.3: a sequence number is 64 bits and MUST NOT wrap
# The largest handshake message we buffer: a NewSessionTicket carries a ticket of at most 2^16-1 bytes plus
# extensions; anything bigger is an attempt to make us hold memory.
_MAX_HANDSHAKE: Final = 2**17

_APPLICATION_DATA: Final = 23
_HANDSHAKE: Final = 22
_ALERT: Final = 21
_NEW_SESSION_TICKET: Final = 4
_KEY_UPDATE: Final = 24
_CLOSE_NOTIFY: Final = 0
_USER_CANCELED: Final = 90
_HEADER_PREFIX: Final = b"\x17\x03\x03"  # opaque_type application_data, legacy_record_version 0x0303

# RFC 8446 6 (AlertDescription), for error messages both ways.
_ALERTS: Final[dict[int, str]] = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    22: "record_overflow",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}
_ALERT_CODES: Final = {name: code for code, name in _ALERTS.items()}


class Tls13RecordError(Exception):
    """A fatal condition; afterwards ``data_to_send()`` may hold the encrypted fatal alert for the peer."""


class _Fatal(Exception):
    """Internal: abort record processing and send this alert."""

    def __init__(self, alert: str, detail: str) -> None:
        super().__init__(detail)
        self.alert = alert


def hkdf_expand_label(hash_algorithm: hashes.HashAlgorithm, secret: bytes, label: bytes, length: int) -> bytes:
    """HKDF-Expand-Label(secret, label, "", length) of RFC 8446 7.1 (the context is always empty here)."""
    full_label = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes((len(full_label),)) + full_label + b"\x00"
    return HKDFExpand(hash_algorithm, length, info).derive(secret)


class Tls13Records:
    """The record layer of one established TLS 1.3 connection, both directions, without any I/O."""

    # Only what a record needs; no buffers while idle (they are None), so that an idle stream stays small.
    __slots__ = (
        "_closed",
        "_error",
        "_handshake",
        "_incoming",
        "_outgoing",
        "_read_aead",
        "_read_iv",
        "_read_key",
        "_read_secret",
        "_read_seq",
        "_suite",
        "_write_aead",
        "_write_iv",
        "_write_key",
        "_write_secret",
        "_write_seq",
        "closed_by_peer",
    )

    def __init__(
        self,
        cipher_suite: str,
        *,
        read_secret: bytes,
        write_secret: bytes,
        read_seq: int = 0,
        write_seq: int = 0,
    ) -> None:
        suite = _SUITES.get(cipher_suite)
        if suite is None:
            raise ValueError(f"unsupported TLS 1.3 cipher suite {cipher_suite!r}")
        digest_size = suite[1].digest_size
        for name, secret in (("read_secret", read_secret), ("write_secret", write_secret)):
            if len(secret) != digest_size:
                raise ValueError(f"{name} must be {digest_size} bytes for {cipher_suite}, not {len(secret)}")
        for name, seq in (("read_seq", read_seq), ("write_seq", write_seq)):
            if not 0 <= seq <= _SEQ_LIMIT:
                raise ValueError(f"{name} must be between 0 and 2**64, not {seq}")
        self._suite = suite
        self._read_secret = bytes(read_secret)
        self._read_aead: _Aead | None = None  # built from the key on first use; release() drops it again
        self._read_key, self._read_iv = self._traffic_keys(self._read_secret)
        self._read_seq = read_seq
        self._write_secret = bytes(write_secret)
        self._write_aead: _Aead | None = None
        self._write_key, self._write_iv = self._traffic_keys(self._write_secret)
        self._write_seq = write_seq
        self._incoming: bytearray | None = None  # a partial record
        self._handshake: bytes | None = None  # a partial handshake message
        self._outgoing: list[bytes] | None = None
        self._error: str | None = None  # set once fatal: every later call raises
        self._closed = False  # we sent close_notify
        self.closed_by_peer = False

    def _traffic_keys(self, secret: bytes) -> tuple[bytes, int]:
        _, hash_algorithm, key_length = self._suite
        key = hkdf_expand_label(hash_algorithm, secret, b"key", key_length)
        iv = hkdf_expand_label(hash_algorithm, secret, b"iv", _IV_LENGTH)
        # The iv as an int: the per-record nonce is then a single XOR (5.3).
        return key, int.from_bytes(iv, "big")

    def release(self) -> None:
        """Free the AEAD objects while the connection is idle: each holds an initialised cipher context of some
        2 kB inside ``cryptography``, four times what the rest of this object needs. The next record builds
        them again from the keys (a few microseconds)."""
        self._read_aead = self._write_aead = None

    def _next_secret(self, secret: bytes) -> bytes:
        hash_algorithm = self._suite[1]
        return hkdf_expand_label(hash_algorithm, secret, b"traffic upd", hash_algorithm.digest_size)

    # -- sending ---------------------------------------------------------------------------------------------

    def _check_can_send(self) -> None:
        if self._error is not None:
            raise Tls13RecordError(f"the connection failed earlier ({self._error})")
        if self._closed:
            raise Tls13RecordError("the connection was closed (close_notify sent)")

    def _protect(self, content_type: int, content: bytes) -> None:
        seq = self._write_seq
        if seq >= _SEQ_LIMIT:
            raise Tls13RecordError("write sequence number exhausted (2**64 records)")
        inner = content + bytes((content_type,))  # no padding
        header = _HEADER_PREFIX + (len(inner) + _TAG_LENGTH).to_bytes(2, "big")
        nonce = (self._write_iv ^ seq).to_bytes(_IV_LENGTH, "big")
        aead = self._write_aead
        if aead is None:
            aead = self._write_aead = self._suite[0](self._write_key)
        record = header + aead.encrypt(nonce, inner, header)
        self._write_seq = seq + 1
        if self._outgoing is None:
            self._outgoing = [record]
        else:
            self._outgoing.append(record)

    def send(self, plaintext: bytes) -> None:
        """Protect application data, in records of at most 2^14 plaintext bytes."""
        self._check_can_send()
        for start in range(0, len(plaintext), _MAX_PLAINTEXT):
            self._protect(_APPLICATION_DATA, plaintext[start : start + _MAX_PLAINTEXT])

    def key_update(self, request_peer_update: bool) -> None:
        """Queue a KeyUpdate (4.6.3) and switch to the next write keys; the peer updates too if requested."""
        self._check_can_send()
        self._send_key_update(request_peer_update)

    def _send_key_update(self, request_peer_update: bool) -> None:
        self._protect(_HANDSHAKE, bytes((_KEY_UPDATE, 0, 0, 1, 1 if request_peer_update else 0)))
        self._write_secret = self._next_secret(self._write_secret)
        self._write_key, self._write_iv = self._traffic_keys(self._write_secret)
        self._write_aead = None
        self._write_seq = 0

    def close(self) -> None:
        """Queue an encrypted close_notify; later ``send()`` raises. Receiving goes on (a half-close, 6.1)."""
        if self._closed or self._error is not None:
            return
        self._protect(_ALERT, bytes((1, _CLOSE_NOTIFY)))
        self._closed = True

    def data_to_send(self) -> bytes:
        """The records queued for the peer; the queue is empty afterwards."""
        outgoing = self._outgoing
        if outgoing is None:
            return b""
        self._outgoing = None
        return b"".join(outgoing)

    # -- receiving -------------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> bytes:
        """Feed bytes from the peer (any split); returns the application data of the complete records."""
        if self._error is not None:
            raise Tls13RecordError(f"the connection failed earlier ({self._error})")
        if self.closed_by_peer:
            return b""  # 6.1: whatever follows close_notify is ignored
        incoming = self._incoming
        if incoming is None:
            buffer: bytes | bytearray = data
        else:
            incoming += data
            buffer = incoming
        plaintext: list[bytes] = []
        try:
            position = self._read_records(buffer, plaintext)
        except _Fatal as fatal:
            self._fail(fatal.alert)
            raise Tls13RecordError(f"{fatal.alert}: {fatal}") from None
        except Tls13RecordError:  # the peer's fatal alert
            self._incoming = self._handshake = None
            raise
        if self.closed_by_peer:
            self._incoming = self._handshake = None
        elif position == len(buffer):
            self._incoming = None
        elif position or incoming is None:
            self._incoming = bytearray(buffer[position:])
        return b"".join(plaintext)

    def _fail(self, alert: str) -> None:
        self._error = alert
        self._incoming = self._handshake = None
        if not self._closed and alert in _ALERT_CODES and self._write_seq < _SEQ_LIMIT:
            self._protect(_ALERT, bytes((2, _ALERT_CODES[alert])))
            self._closed = True

    def _read_records(self, buffer: bytes | bytearray, plaintext: list[bytes]) -> int:
        """Process every complete record in buffer; returns where the unprocessed rest begins."""
        position = 0
        end = len(buffer)
        while end - position >= 5:
            if buffer[position] != _APPLICATION_DATA:
                # 5.1: after the handshake every record is protected, including a change_cipher_spec
                # (that is only allowed between the first ClientHello and the peer's Finished).
                raise _Fatal("unexpected_message", f"unprotected record of type {buffer[position]}")
            if buffer[position + 1] != 3 or buffer[position + 2] != 3:
                raise _Fatal("decode_error", "legacy_record_version is not 0x0303")
            length = int.from_bytes(buffer[position + 3 : position + 5], "big")
            if length > _MAX_CIPHERTEXT:
                raise _Fatal("record_overflow", f"record of {length} bytes")
            record_end = position + 5 + length
            if record_end > end:
                break
            header = bytes(buffer[position : position + 5])
            ciphertext = bytes(buffer[position + 5 : record_end])
            position = record_end
            self._unprotect(header, ciphertext, plaintext)
            if self.closed_by_peer:
                break
        return position

    def _unprotect(self, header: bytes, ciphertext: bytes, plaintext: list[bytes]) -> None:
        seq = self._read_seq
        if seq >= _SEQ_LIMIT:
            raise _Fatal("internal_error", "read sequence number exhausted (2**64 records)")
        nonce = (self._read_iv ^ seq).to_bytes(_IV_LENGTH, "big")
        try:
            aead = self._read_aead
            if aead is None:
                aead = self._read_aead = self._suite[0](self._read_key)
            inner = aead.decrypt(nonce, ciphertext, header)
        except InvalidTag:
            raise _Fatal("bad_record_mac", "record authentication failed") from None
        self._read_seq = seq + 1
        if len(inner) > _MAX_PLAINTEXT + 1:
            raise _Fatal("record_overflow", f"inner plaintext of {len(inner)} bytes")
        content = inner.rstrip(b"\x00")  # 5.4: padding is zeros after the content type
        if not content:
            raise _Fatal("unexpected_message", "record without a content type (all zeros)")
        content_type = content[-1]
        content = content[:-1]
        if self._handshake is not None and content_type != _HANDSHAKE:
            # 5.1: a handshake message split over records must not have other records in between.
            raise _Fatal("unexpected_message", "record interleaved with a fragmented handshake message")
        if content_type == _APPLICATION_DATA:
            if content:
                plaintext.append(content)
        elif content_type == _HANDSHAKE:
            self._read_handshake(content)
        elif content_type == _ALERT:
            self._read_alert(content)
        else:
            raise _Fatal("unexpected_message", f"record of content type {content_type}")

    def _read_alert(self, content: bytes) -> None:
        if len(content) != 2:  # 5.1: alerts are neither fragmented nor coalesced
            raise _Fatal("decode_error", f"alert record of {len(content)} bytes")
        description = content[1]
        if description == _CLOSE_NOTIFY:
            self.closed_by_peer = True
        elif description != _USER_CANCELED:  # 6: in TLS 1.3 every other alert is fatal, whatever its level
            name = _ALERTS.get(description, f"unknown alert {description}")
            self._error = name
            self._closed = True  # 6.2: no alert back in answer to a fatal one
            raise Tls13RecordError(f"the peer sent the alert {name}")

    def _read_handshake(self, content: bytes) -> None:
        if not content:
            raise _Fatal("unexpected_message", "zero-length handshake record")  # 5.1
        data = content if self._handshake is None else self._handshake + content
        self._handshake = None
        while len(data) >= 4:
            message_type = data[0]
            length = int.from_bytes(data[1:4], "big")
            if length > _MAX_HANDSHAKE:
                raise _Fatal("decode_error", f"handshake message of {length} bytes")
            if len(data) < 4 + length:
                break
            body = data[4 : 4 + length]
            data = data[4 + length :]
            if message_type == _KEY_UPDATE:
                if length != 1:
                    raise _Fatal("decode_error", "KeyUpdate of the wrong length")
                if body[0] > 1:
                    raise _Fatal("illegal_parameter", f"KeyUpdate request_update {body[0]}")
                if data:
                    # 5.1: a key change must fall on a record boundary.
                    raise _Fatal("unexpected_message", "data after a KeyUpdate in the same record")
                self._read_secret = self._next_secret(self._read_secret)
                self._read_key, self._read_iv = self._traffic_keys(self._read_secret)
                self._read_aead = None
                self._read_seq = 0
                # 4.6.3: answer before our next application data; after our close_notify nothing may follow.
                if body[0] == 1 and not self._closed:
                    self._send_key_update(False)
            elif message_type != _NEW_SESSION_TICKET:  # tickets are of no use without the OpenSSL session
                raise _Fatal("unexpected_message", f"handshake message of type {message_type}")
        if data:
            self._handshake = data
