"""fedgate.tls13: RFC 8448 known answers, hand-over from real OpenSSL (pyOpenSSL), and a mirrored pair."""

from __future__ import annotations

import contextlib
import gc
import tracemalloc
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from OpenSSL import SSL

from fedgate.certs import CertFiles, TestCA
from fedgate.tls13 import SUPPORTED_SUITES, Tls13RecordError, Tls13Records, hkdf_expand_label

SUITES = sorted(SUPPORTED_SUITES)
AES128 = "TLS_AES_128_GCM_SHA256"


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- RFC 8448 section 3 ("Simple 1-RTT Handshake"), copied from the RFC's trace -------------------------------

C_AP_SECRET = h("9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5")
S_AP_SECRET = h("a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43")
C_AP_KEY, C_AP_IV = h("17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51"), h("5b 78 92 3d ee 08 57 90 33 e5 23 d9")
S_AP_KEY, S_AP_IV = h("9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56"), h("cf 78 2b 88 dd 83 54 9a ad f1 e9 84")
# {server} send handshake record: the NewSessionTicket, the first record under server_application_traffic_secret_0.
NST_RECORD = h(
    "17 03 03 00 de 3a 6b 8f 90 41 4a 97 d6 95 9c 34 87 68 0d e5 13 4a 2b 24 0e 6c ff ac 11 6e 95 d4 1d 6a f8 f6"
    "b5 80 dc f3 d1 1d 63 c7 58 db 28 9a 01 59 40 25 2f 55 71 3e 06 1d c1 3e 07 88 91 a3 8e fb cf 57 53 ad 8e f1"
    "70 ad 3c 73 53 d1 6d 9d a7 73 b9 ca 7f 2b 9f a1 b6 c0 d4 a3 d0 3f 75 e0 9c 30 ba 1e 62 97 2a c4 6f 75 f7 b9"
    "81 be 63 43 9b 29 99 ce 13 06 46 15 13 98 91 d5 e4 c5 b4 06 f1 6e 3f c1 81 a7 7c a4 75 84 00 25 db 2f 0a 77"
    "f8 1b 5a b0 5b 94 c0 13 46 75 5f 69 23 2c 86 51 9d 86 cb ee ac 87 aa c3 47 d1 43 f9 60 5d 64 f6 50 db 4d 02"
    "3e 70 e9 52 ca 49 fe 51 37 12 1c 74 bc 26 97 68 7e 24 87 46 d6 df 35 30 05 f3 bc e1 86 96 12 9c 81 53 55 6b"
    "3b 6c 67 79 b3 7b f1 59 85 68 4f"
)
C_APP_RECORD = h(
    "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea 42 f9 14 aa 66 bc ab 3f 2b 98 19 a8"
    "a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4"
)
S_APP_RECORD = h(
    "17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 d0 5f 82 aa 1b 36 e3 0e fa f9"
    "7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d"
)
C_ALERT_RECORD = h("17 03 03 00 13 c9 87 27 60 65 56 66 b7 4d 7f f1 15 3e fd 6d b6 d0 b0 e3")
S_ALERT_RECORD = h("17 03 03 00 13 b5 8f d6 71 66 eb f5 99 d2 47 20 cf be 7e fa 7a 88 64 a9")
APP_PAYLOAD = bytes(range(50))  # both application_data records carry 00 01 ... 31


def test_rfc8448_application_traffic_keys() -> None:
    sha256 = hashes.SHA256()
    assert hkdf_expand_label(sha256, S_AP_SECRET, b"key", 16) == S_AP_KEY
    assert hkdf_expand_label(sha256, S_AP_SECRET, b"iv", 12) == S_AP_IV
    assert hkdf_expand_label(sha256, C_AP_SECRET, b"key", 16) == C_AP_KEY
    assert hkdf_expand_label(sha256, C_AP_SECRET, b"iv", 12) == C_AP_IV


def test_rfc8448_client_side() -> None:
    client = Tls13Records(AES128, read_secret=S_AP_SECRET, write_secret=C_AP_SECRET)
    client.send(APP_PAYLOAD)
    assert client.data_to_send() == C_APP_RECORD
    # The ticket is ignored, the data returned, the close_notify seen.
    assert client.receive_data(NST_RECORD + S_APP_RECORD + S_ALERT_RECORD) == APP_PAYLOAD
    assert client.closed_by_peer
    client.close()
    assert client.data_to_send() == C_ALERT_RECORD


def test_rfc8448_server_side() -> None:
    # The server already protected one record (the ticket) with its secret.
    server = Tls13Records(AES128, read_secret=C_AP_SECRET, write_secret=S_AP_SECRET, write_seq=1)
    assert server.receive_data(C_APP_RECORD) == APP_PAYLOAD
    server.send(APP_PAYLOAD)
    assert server.data_to_send() == S_APP_RECORD
    assert server.receive_data(C_ALERT_RECORD) == b""
    assert server.closed_by_peer
    server.close()
    assert server.data_to_send() == S_ALERT_RECORD


def test_rfc8448_byte_by_byte() -> None:
    client = Tls13Records(AES128, read_secret=S_AP_SECRET, write_secret=C_AP_SECRET)
    wire = NST_RECORD + S_APP_RECORD
    got = b"".join(client.receive_data(wire[i : i + 1]) for i in range(len(wire)))
    assert got == APP_PAYLOAD


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        Tls13Records("TLS_AES_128_CCM_SHA256", read_secret=S_AP_SECRET, write_secret=C_AP_SECRET)
    with pytest.raises(ValueError, match="48 bytes"):
        Tls13Records("TLS_AES_256_GCM_SHA384", read_secret=S_AP_SECRET, write_secret=C_AP_SECRET)
    with pytest.raises(ValueError, match="write_seq"):
        Tls13Records(AES128, read_secret=S_AP_SECRET, write_secret=C_AP_SECRET, write_seq=-1)


# -- hand-over from real OpenSSL ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_cert(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    directory = tmp_path_factory.mktemp("tls13-pki")
    return TestCA.create(directory / "ca").issue("a.example", directory / "certs")


def read_all(read: Callable[[int], bytes]) -> bytes:
    """Call an OpenSSL read until it wants more input."""
    out = b""
    while True:
        try:
            out += read(65536)
        except SSL.WantReadError:
            return out


def drain(conn: SSL.Connection) -> bytes:
    """All the bytes OpenSSL has written to its memory BIO."""
    return read_all(conn.bio_read)


def recv_all(conn: SSL.Connection) -> bytes:
    """All the application data OpenSSL can decrypt from what it was given."""
    return read_all(conn.recv)


def count_records(wire: bytes) -> int:
    """How many records are in wire, walking the 5-byte headers (all must be whole)."""
    count, position = 0, 0
    while position < len(wire):
        assert wire[position] == 23, "after the handshake every record is application_data on the outside"
        position += 5 + int.from_bytes(wire[position + 3 : position + 5], "big")
        count += 1
    assert position == len(wire)
    return count


class Side:
    """One OpenSSL endpoint, its traffic secrets (from the key log), and its application-key record counts."""

    def __init__(self, context: SSL.Context, server: bool) -> None:
        self.secrets: dict[str, bytes] = {}
        context.set_keylog_callback(self._keylog)
        self.conn = SSL.Connection(context)
        if server:
            self.conn.set_accept_state()
        else:
            self.conn.set_connect_state()
        self.written = 0  # records written under the application traffic secret
        self.read = 0

    def _keylog(self, conn: SSL.Connection, line: bytes) -> None:
        label, _random, secret = line.decode().split()
        self.secrets[label] = bytes.fromhex(secret)

    def handshake_step(self) -> bytes:
        with contextlib.suppress(SSL.WantReadError):
            self.conn.do_handshake()
        return drain(self.conn)

    def write_to(self, other: Side) -> None:
        """Move what this side wrote (application records only, after the handshake) to the other side."""
        wire = drain(self.conn)
        n = count_records(wire)
        self.written += n
        other.read += n
        other.conn.bio_write(wire)


def openssl_pair(suite: str, cert: CertFiles) -> tuple[Side, Side]:
    contexts = []
    for method_side in ("client", "server"):
        context = SSL.Context(SSL.TLS_METHOD)
        context.set_min_proto_version(SSL.TLS1_3_VERSION)
        context.set_tls13_ciphersuites(suite.encode())
        if method_side == "server":
            context.use_certificate_chain_file(str(cert.chain))
            context.use_privatekey_file(str(cert.key))
        contexts.append(context)
    client, server = Side(contexts[0], server=False), Side(contexts[1], server=True)
    server.conn.bio_write(client.handshake_step())  # ClientHello
    client.conn.bio_write(server.handshake_step())  # ServerHello ... server Finished, handshake keys
    server.conn.bio_write(client.handshake_step())  # (change_cipher_spec,) client Finished, handshake keys
    server.conn.do_handshake()
    # From here on everything is under the application traffic secrets; the first are the server's tickets.
    server.write_to(client)
    assert client.conn.get_cipher_name() == server.conn.get_cipher_name() == suite
    # Some application data through OpenSSL on both sides (the client also reads the tickets here).
    client.conn.sendall(b"<stream:stream>")
    client.write_to(server)
    assert recv_all(server.conn) == b"<stream:stream>"
    server.conn.sendall(b"<stream:features/>" * 2000)  # 36 kB: three records
    server.write_to(client)
    assert recv_all(client.conn) == b"<stream:features/>" * 2000
    assert server.written >= 4
    return client, server


def handover(side: Side, server: bool, suite: str) -> Tls13Records:
    read_label, write_label = ("CLIENT", "SERVER") if server else ("SERVER", "CLIENT")
    return Tls13Records(
        suite,
        read_secret=side.secrets[f"{read_label}_TRAFFIC_SECRET_0"],
        write_secret=side.secrets[f"{write_label}_TRAFFIC_SECRET_0"],
        read_seq=side.read,
        write_seq=side.written,
    )


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("replaced", ["server", "client"])
def test_openssl_handover(suite: str, replaced: str, server_cert: CertFiles) -> None:
    client, server = openssl_pair(suite, server_cert)
    ours_is_server = replaced == "server"
    ours_side, peer_side = (server, client) if ours_is_server else (client, server)
    ours = handover(ours_side, ours_is_server, suite)
    peer = peer_side.conn
    del ours_side  # the OpenSSL object of our side is not used again

    def to_peer() -> bytes:
        peer.bio_write(ours.data_to_send())
        return recv_all(peer)

    def from_peer() -> bytes:
        return ours.receive_data(drain(peer))

    ours.send(b"<iq/>")
    assert to_peer() == b"<iq/>"
    peer.sendall(b"<presence/>")
    assert from_peer() == b"<presence/>"

    big = bytes(i % 251 for i in range(100_000))
    ours.send(big)
    wire = ours.data_to_send()
    assert count_records(wire) == 7  # 100 kB in records of at most 16 kB
    peer.bio_write(wire)
    assert recv_all(peer) == big
    peer.sendall(big)
    assert from_peer() == big

    # A KeyUpdate asking OpenSSL to update too: OpenSSL answers with its own before its next data.
    ours.key_update(request_peer_update=True)
    ours.send(b"after update")
    assert to_peer() == b"after update"
    peer.sendall(b"updated too")
    assert from_peer() == b"updated too"

    # Our close_notify is a clean shutdown for OpenSSL; then OpenSSL's close_notify reaches us.
    ours.close()
    peer.bio_write(ours.data_to_send())
    with pytest.raises(SSL.ZeroReturnError):
        peer.recv(1024)
    peer.shutdown()
    assert from_peer() == b""
    assert ours.closed_by_peer


# -- a mirrored pair ----------------------------------------------------------------------------------------------


def pair(suite: str = AES128) -> tuple[Tls13Records, Tls13Records]:
    digest = 48 if "SHA384" in suite else 32
    c_secret, s_secret = bytes(range(digest)), bytes(range(100, 100 + digest))
    # As if some records had already gone each way: the sequence numbers start where they left off.
    client = Tls13Records(suite, read_secret=s_secret, write_secret=c_secret, read_seq=7, write_seq=5)
    server = Tls13Records(suite, read_secret=c_secret, write_secret=s_secret, read_seq=5, write_seq=7)
    return client, server


def move(source: Tls13Records, destination: Tls13Records) -> bytes:
    return destination.receive_data(source.data_to_send())


@pytest.mark.parametrize("suite", SUITES)
def test_pair_key_update_requested(suite: str) -> None:
    client, server = pair(suite)
    client.send(b"before")
    assert move(client, server) == b"before"
    client.key_update(request_peer_update=True)
    assert client._write_seq == 0
    client.send(b"after")
    assert move(client, server) == b"after"
    assert server._read_seq == 1  # the record after the KeyUpdate, with the new keys
    wire = server.data_to_send()  # the server's answering KeyUpdate(update_not_requested), already queued
    assert count_records(wire) == 1
    assert server._write_seq == 0
    server.send(b"reply")
    assert client.receive_data(wire + server.data_to_send()) == b"reply"
    assert client._read_seq == 1
    assert client.data_to_send() == b""  # update_not_requested: no answer
    client.send(b"again")
    assert move(client, server) == b"again"


def test_pair_key_update_not_requested() -> None:
    client, server = pair()
    client.key_update(request_peer_update=False)
    client.send(b"x")
    assert move(client, server) == b"x"
    assert server.data_to_send() == b""
    server.send(b"y")  # the server's write keys are unchanged
    assert move(server, client) == b"y"


def test_pair_byte_by_byte_and_coalesced() -> None:
    client, server = pair()
    client.send(b"one")
    client.key_update(request_peer_update=True)
    client.send(b"two" * 7000)  # two records
    wire = client.data_to_send()
    assert b"".join(server.receive_data(wire[i : i + 1]) for i in range(len(wire))) == b"one" + b"two" * 7000
    assert server._incoming is None
    server.send(b"three")
    assert move(server, client) == b"three"


def _inner_record(sender: Tls13Records, content: bytes, content_type: int) -> bytes:
    sender._protect(content_type, content)
    return sender.data_to_send()


def test_handshake_message_split_over_records() -> None:
    client, server = pair()
    # 4.6.1: a NewSessionTicket split over two records, then a KeyUpdate in a third.
    ticket = bytes((4, 0, 0, 20)) + bytes(20)
    wire = _inner_record(server, ticket[:3], 22) + _inner_record(server, ticket[3:], 22)
    assert client.receive_data(wire) == b""
    assert client._handshake is None
    server.key_update(request_peer_update=False)
    server.send(b"ok")
    assert client.receive_data(server.data_to_send()) == b"ok"


@pytest.mark.parametrize(
    ("content", "content_type", "alert"),
    [
        (bytes((13, 0, 0, 0)), 22, "unexpected_message"),  # CertificateRequest: no post-handshake auth
        (bytes((24, 0, 0, 1, 0, 4, 0, 0, 0)), 22, "unexpected_message"),  # KeyUpdate not at a record boundary
        (bytes((24, 0, 0, 1, 2)), 22, "illegal_parameter"),
        (bytes((24, 0, 0, 2, 0, 0)), 22, "decode_error"),
        (b"", 22, "unexpected_message"),
        (b"\x01", 20, "unexpected_message"),  # change_cipher_spec, protected
        (b"x", 99, "unexpected_message"),
        (b"\x01\x00\x00", 21, "decode_error"),  # three-byte alert
        (bytes(2**14 + 1), 23, "record_overflow"),
    ],
)
def test_bad_inner_content(content: bytes, content_type: int, alert: str) -> None:
    client, server = pair()
    wire = _inner_record(server, content, content_type)
    with pytest.raises(Tls13RecordError, match=alert):
        client.receive_data(wire)
    with pytest.raises(Tls13RecordError, match=alert):  # the encrypted fatal alert reached the server
        move(client, server)


def test_all_zero_inner_plaintext() -> None:
    client, server = pair()
    wire = _inner_record(server, bytes(10), 0)  # content type 0 and zeros: no content type at all
    with pytest.raises(Tls13RecordError, match="unexpected_message"):
        client.receive_data(wire)
    with pytest.raises(Tls13RecordError, match="unexpected_message"):
        move(client, server)


def test_padding_is_stripped() -> None:
    client, server = pair()
    wire = _inner_record(server, b"padded" + b"\x17" + bytes(100), 0)  # content type 0 is what padding looks like
    assert client.receive_data(wire) == b"padded"


def test_tampered_record() -> None:
    client, server = pair()
    server.send(b"hello")
    wire = bytearray(server.data_to_send())
    wire[7] ^= 1
    with pytest.raises(Tls13RecordError, match="bad_record_mac"):
        client.receive_data(bytes(wire))
    with pytest.raises(Tls13RecordError, match="bad_record_mac"):
        client.receive_data(b"")  # later calls raise too
    with pytest.raises(Tls13RecordError):
        client.send(b"more")
    # The encrypted fatal alert reaches the server, which names it.
    with pytest.raises(Tls13RecordError, match="bad_record_mac"):
        move(client, server)
    with pytest.raises(Tls13RecordError):
        server.send(b"more")
    assert server.data_to_send() == b""  # no alert in answer to an alert


def test_tampered_header_fails_the_mac() -> None:
    client, server = pair()
    server.send(b"hello")
    wire = bytearray(server.data_to_send())
    wire[4] += 1  # the header is the additional data: one byte longer, one byte of the next "record"
    with pytest.raises(Tls13RecordError, match="bad_record_mac"):
        client.receive_data(bytes(wire) + b"\x00")


def test_record_overflow() -> None:
    client, server = pair()
    with pytest.raises(Tls13RecordError, match="record_overflow"):
        client.receive_data(b"\x17\x03\x03" + (2**14 + 257).to_bytes(2, "big"))  # the header is enough
    with pytest.raises(Tls13RecordError, match="record_overflow"):
        move(client, server)


@pytest.mark.parametrize(
    ("header", "alert"),
    [
        (b"\x14\x03\x03\x00\x01", "unexpected_message"),  # change_cipher_spec after the handshake
        (b"\x16\x03\x03\x00\x04", "unexpected_message"),
        (b"\x17\x03\x01\x00\x20", "decode_error"),
    ],
)
def test_bad_outer_header(header: bytes, alert: str) -> None:
    client, server = pair()
    with pytest.raises(Tls13RecordError, match=alert):
        client.receive_data(header + b"\x01")
    with pytest.raises(Tls13RecordError, match=alert):
        move(client, server)


@pytest.mark.parametrize(("alert", "name"), [(b"\x02\x7b", "unknown alert 123"), (b"\x01\x2a", "bad_certificate")])
def test_alerts_from_the_peer(alert: bytes, name: str) -> None:
    client, server = pair()
    server.send(b"first")
    wire = server.data_to_send() + _inner_record(server, alert, 21)
    with pytest.raises(Tls13RecordError, match=name):
        client.receive_data(wire)
    assert client.data_to_send() == b""


def test_user_canceled_is_ignored() -> None:
    client, server = pair()
    wire = _inner_record(server, b"\x01\x5a", 21)
    server.send(b"still here")
    assert client.receive_data(wire + server.data_to_send()) == b"still here"


def test_close_notify_and_later_bytes() -> None:
    client, server = pair()
    server.send(b"last words")
    server.close()
    server.close()  # idempotent
    wire = server.data_to_send()
    assert count_records(wire) == 2
    garbage = b"\x17\x03\x03\x00\x05hello" + b"\x99" * 10
    assert client.receive_data(wire + garbage[:7]) == b"last words"
    assert client.closed_by_peer
    assert client.receive_data(garbage[7:]) == b""
    assert client._incoming is None
    with pytest.raises(Tls13RecordError, match="closed"):
        server.send(b"more")
    with pytest.raises(Tls13RecordError, match="closed"):
        server.key_update(request_peer_update=False)
    # A half-close: the client may still send, and the server still reads.
    client.send(b"reply")
    assert move(client, server) == b"reply"


def test_key_update_request_after_close_is_not_answered() -> None:
    client, server = pair()
    server.close()
    server.data_to_send()
    client.key_update(request_peer_update=True)
    client.send(b"x")
    assert move(client, server) == b"x"
    assert server.data_to_send() == b""  # nothing may follow our close_notify


def test_sequence_number_must_not_wrap() -> None:
    client, server = pair()
    server._write_seq = client._read_seq = 2**64 - 1
    server.send(b"last")
    assert move(server, client) == b"last"
    with pytest.raises(Tls13RecordError, match="exhausted"):
        server.send(b"one too many")
    # The reading side refuses a record with a wrapped number, too.
    server._write_seq = 0
    server.send(b"wrapped")
    with pytest.raises(Tls13RecordError, match="exhausted"):
        move(server, client)


def test_send_splits_and_empty() -> None:
    client, server = pair()
    client.send(b"")
    assert client.data_to_send() == b""
    client.send(bytes(2**14))
    client.send(bytes(2**14 + 1))
    wire = client.data_to_send()
    assert count_records(wire) == 3
    assert len(wire) == 3 * (5 + 17) + 2 * 2**14 + 1
    assert move(client, server) == b""  # moved already: nothing left
    assert server.receive_data(wire) == bytes(2 * 2**14 + 1)


# -- memory -------------------------------------------------------------------------------------------------------


def _idle_object_memory() -> int:
    """Python allocations still held by one idle object after some traffic (its peer is freed)."""
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    client, server = pair()
    for _ in range(3):
        client.send(b"<message>hello</message>" * 10)
        move(client, server)
        server.send(b"<r/>")
        move(server, client)
    client.key_update(request_peer_update=True)
    move(client, server)
    move(server, client)
    del server
    gc.collect()
    size = tracemalloc.get_traced_memory()[0] - before
    assert client._incoming is None and client._outgoing is None and client._handshake is None
    return size


def test_idle_object_memory() -> None:
    tracemalloc.start()
    try:
        _idle_object_memory()  # warm-up: one-time caches of cryptography and the interpreter
        size = min(_idle_object_memory() for _ in range(3))
    finally:
        tracemalloc.stop()
    # Measured 636 bytes (cryptography 50, CPython 3.11): the object with its slots, two secrets, two iv ints, two
    # AEAD objects. The AEAD keys themselves live in Rust / OpenSSL memory, which tracemalloc does not see.
    assert size < 2000, size
