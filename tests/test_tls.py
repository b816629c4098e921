"""Two TlsSessions wired to each other in memory: no sockets."""

from __future__ import annotations

import contextlib
import ssl
import weakref
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from OpenSSL import SSL

from fedgate.certs import TestCA
from fedgate.tls import (
    CertificateStatus,
    Credentials,
    TlsContext,
    TlsError,
    TlsSession,
    TrustAnchors,
    client_context,
    server_context,
)


class Pki:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = TestCA.create(directory / "ca")
        self.trust = TrustAnchors((self.ca.cert_path,), use_system=False)
        self._cache: dict[tuple[tuple[str, Any], ...], Credentials] = {}

    def creds(self, domain: str, **options: Any) -> Credentials:
        key = (("domain", domain), *sorted(options.items()))
        if key not in self._cache:
            basename = "-".join(f"{k}={v}" for k, v in key).replace("/", "_")
            files = self.ca.issue(domain, self.directory / "certs", basename=basename, **options)
            self._cache[key] = Credentials(files.chain, files.key)
        return self._cache[key]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def _tls12_only(context: TlsContext) -> TlsContext:
    context._default.set_max_proto_version(SSL.TLS1_2_VERSION)
    return context


def pump(client: TlsSession, server: TlsSession) -> tuple[bytes, bytes]:
    """Move bytes both ways until neither side has any; returns (plaintext the client got, the server got)."""
    got_client, got_server = b"", b""
    for _ in range(20):
        to_server = client.data_to_send()
        if to_server:
            got_server += server.receive_data(to_server)
        to_client = server.data_to_send()
        if to_client:
            got_client += client.receive_data(to_client)
        if not to_server and not to_client:
            return got_client, got_server
    raise AssertionError("the sessions never went quiet")


def connect(
    pki: Pki,
    *,
    server: dict[str, Credentials] | None = None,
    client: Credentials | None = None,
    sni: str | None = "a.example",
    tls12: bool = False,
) -> tuple[TlsSession, TlsSession]:
    sctx = server_context(server or {"a.example": pki.creds("a.example")}, pki.trust)
    cctx = client_context(client, pki.trust)
    if tls12:
        _tls12_only(cctx)
    c = TlsSession(cctx, server_side=False, server_name=sni)
    s = TlsSession(sctx, server_side=True)
    c.start()
    pump(c, s)
    assert c.handshake_complete and s.handshake_complete
    return c, s


@pytest.mark.parametrize("tls12", [False, True], ids=["tls1.3", "tls1.2"])
def test_valid_certificates_both_ways(pki: Pki, tls12: bool) -> None:
    c, s = connect(pki, client=pki.creds("b.example"), tls12=tls12)
    assert s.handshake_complete
    assert c.version == ("TLSv1.2" if tls12 else "TLSv1.3") == s.version
    assert c.cipher and c.cipher == s.cipher
    assert s.server_name == "a.example"

    server_cert = c.peer_certificate()
    assert server_cert.presented and server_cert.chain_valid and server_cert.error is None
    assert server_cert.valid_for("a.example")
    assert not server_cert.valid_for("b.example")
    assert server_cert.names is not None and server_cert.names.dns_ids == ("a.example",)
    assert server_cert.not_after is not None

    client_cert = s.peer_certificate()
    assert client_cert.presented and client_cert.chain_valid
    assert client_cert.valid_for("b.example")
    assert not client_cert.valid_for("a.example")

    for session, leaf_domain in ((c, "a.example"), (s, "b.example")):
        chain = [x509.load_der_x509_certificate(d) for d in session.peer_chain_der()]
        assert len(chain) == 2
        assert chain[0].subject.rfc4514_string() == f"CN={leaf_domain}"
        assert chain[1] == pki.ca.cert


def test_before_handshake(pki: Pki) -> None:
    c = TlsSession(client_context(None, pki.trust), server_side=False, server_name="a.example")
    assert not c.handshake_complete
    assert c.version is None and c.cipher is None
    assert c.peer_certificate() == CertificateStatus(presented=False, chain_valid=False)
    assert c.peer_chain_der() == []
    with pytest.raises(TlsError):
        c.send(b"too early")
    s = TlsSession(server_context({"a.example": pki.creds("a.example")}, pki.trust), server_side=True)
    with pytest.raises(TlsError):
        s.start()


def test_certificate_for_another_name(pki: Pki) -> None:
    c, s = connect(pki, server={"a.example": pki.creds("other.example")}, client=pki.creds("b.example"))
    status = c.peer_certificate()
    assert status.chain_valid and status.error is None
    assert not status.valid_for("a.example")
    assert status.valid_for("other.example")
    assert not s.peer_certificate().valid_for("c.example")
    # What a live stream keeps: the names, not the parsed certificate; the answers are the same.
    light = c.peer_certificate(keep_certificate=False)
    assert light.certificate is None and light.names == status.names
    assert light.valid_for("other.example") and not light.valid_for("a.example")


# X509_V_ERR_* codes; the texts vary a little between OpenSSL versions.
CERT_NOT_YET_VALID, CERT_HAS_EXPIRED, DEPTH_ZERO_SELF_SIGNED_CERT = 9, 10, 18
SELF_SIGNED_CERT_IN_CHAIN, UNABLE_TO_GET_ISSUER_CERT_LOCALLY, INVALID_PURPOSE = 19, 20, 26


@pytest.mark.parametrize(
    ("options", "code", "error"),
    [
        ({"self_signed": True}, DEPTH_ZERO_SELF_SIGNED_CERT, "self-signed"),
        ({"expired": True}, CERT_HAS_EXPIRED, "expired"),
        ({"not_yet_valid": True}, CERT_NOT_YET_VALID, "not yet valid"),
        ({"key_usage": "wrong"}, INVALID_PURPOSE, "purpose"),
        ({"key_usage": "server_only"}, INVALID_PURPOSE, "purpose"),  # no clientAuth
    ],
)
@pytest.mark.parametrize("tls12", [False, True], ids=["tls1.3", "tls1.2"])
def test_bad_client_certificate_completes_handshake(
    pki: Pki, options: dict[str, Any], code: int, error: str, tls12: bool
) -> None:
    c, s = connect(pki, client=pki.creds("b.example", **options), tls12=tls12)
    assert s.handshake_complete and c.handshake_complete
    status = s.peer_certificate()
    assert status.presented
    assert not status.chain_valid
    assert status.error_code == code and status.error_depth == 0
    assert status.error is not None and error in status.error
    assert not status.valid_for("b.example")
    assert status.names is not None and status.names.dns_ids == ("b.example",)
    c.send(b"<stream:stream>")
    assert pump(c, s) == (b"", b"<stream:stream>")


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"self_signed": True}, DEPTH_ZERO_SELF_SIGNED_CERT),
        ({"expired": True}, CERT_HAS_EXPIRED),
        ({"key_usage": "wrong"}, INVALID_PURPOSE),
        ({"key_usage": "client_only"}, INVALID_PURPOSE),  # no serverAuth
    ],
)
def test_bad_server_certificate_completes_handshake(pki: Pki, options: dict[str, Any], code: int) -> None:
    c, _ = connect(pki, server={"a.example": pki.creds("a.example", **options)})
    status = c.peer_certificate()
    assert status.presented and not status.chain_valid
    assert status.error_code == code and status.error
    assert not status.valid_for("a.example")


def test_unknown_ca(pki: Pki, tmp_path: Path) -> None:
    stranger = TestCA.create(tmp_path / "other-ca")
    files = stranger.issue("b.example", tmp_path)
    _, s = connect(pki, client=Credentials(files.chain, files.key))
    status = s.peer_certificate()
    assert not status.chain_valid
    assert status.error_code == SELF_SIGNED_CERT_IN_CHAIN
    _, s = connect(pki, client=Credentials(files.cert, files.key))  # the leaf alone
    assert s.peer_certificate().error_code == UNABLE_TO_GET_ISSUER_CERT_LOCALLY


def test_no_client_certificate(pki: Pki) -> None:
    c, s = connect(pki, client=None)
    status = s.peer_certificate()
    assert status == CertificateStatus(presented=False, chain_valid=False)
    assert status.error is None
    assert not status.valid_for("b.example")
    assert s.peer_chain_der() == []
    assert c.peer_certificate().valid_for("a.example")


@pytest.mark.parametrize(
    ("sni", "expected"),
    [("a.example", "a.example"), ("B.Example", "b.example"), ("c.example", "a.example"), (None, "a.example")],
)
def test_sni_picks_credentials(pki: Pki, sni: str | None, expected: str) -> None:
    server = {"a.example": pki.creds("a.example"), "b.example": pki.creds("b.example")}
    c, s = connect(pki, server=server, sni=sni)
    assert s.server_name == (sni.lower() if sni else None)  # what the client put in its ClientHello
    assert c.server_name == sni
    status = c.peer_certificate()
    assert status.valid_for(expected)
    assert status.names is not None and status.names.dns_ids == (expected,)


def test_sni_default_domain(pki: Pki) -> None:
    server = {"a.example": pki.creds("a.example"), "b.example": pki.creds("b.example")}
    sctx = server_context(server, pki.trust, default_domain="b.example")
    assert sctx.domains == ("a.example", "b.example")
    c = TlsSession(client_context(None, pki.trust), server_side=False)
    s = TlsSession(sctx, server_side=True)
    c.start()
    pump(c, s)
    assert s.server_name is None
    assert c.peer_certificate().valid_for("b.example")


def test_server_context_arguments(pki: Pki) -> None:
    with pytest.raises(ValueError):
        server_context({}, pki.trust)
    with pytest.raises(ValueError):
        server_context({"a.example": pki.creds("a.example")}, pki.trust, default_domain="z.example")
    with pytest.raises(ValueError):
        TlsSession(client_context(None, pki.trust), server_side=True)


def test_bad_credentials_files(pki: Pki, tmp_path: Path) -> None:
    good = pki.creds("a.example")
    other = pki.creds("b.example")
    with pytest.raises(TlsError):
        client_context(Credentials(good.cert_chain, other.key), pki.trust)  # key does not match
    with pytest.raises(TlsError):
        client_context(Credentials(tmp_path / "missing.pem", good.key), pki.trust)
    with pytest.raises(TlsError):
        client_context(None, TrustAnchors((tmp_path / "missing-ca.pem",)))


def test_system_trust_does_not_know_our_ca(pki: Pki) -> None:
    sctx = server_context({"a.example": pki.creds("a.example")}, pki.trust)
    c = TlsSession(client_context(None, TrustAnchors()), server_side=False, server_name="a.example")
    s = TlsSession(sctx, server_side=True)
    c.start()
    pump(c, s)
    status = c.peer_certificate()
    assert status.presented and not status.chain_valid


@pytest.mark.parametrize("tls12", [False, True], ids=["tls1.3", "tls1.2"])
def test_data_glued_to_end_of_handshake(pki: Pki, tls12: bool) -> None:
    sctx = server_context({"a.example": pki.creds("a.example")}, pki.trust)
    cctx = client_context(pki.creds("b.example"), pki.trust)
    if tls12:
        _tls12_only(cctx)
    c = TlsSession(cctx, server_side=False, server_name="a.example")
    s = TlsSession(sctx, server_side=True)
    c.start()
    assert s.receive_data(c.data_to_send()) == b""
    if tls12:
        # ServerHello..Done -> client; client Certificate..Finished -> server; the server's Finished and its
        # first application data go out in one write.
        assert c.receive_data(s.data_to_send()) == b""
        assert s.receive_data(c.data_to_send()) == b""
        assert s.handshake_complete and not c.handshake_complete
        s.send(b"<stream:stream to='b.example'>")
        assert c.receive_data(s.data_to_send()) == b"<stream:stream to='b.example'>"
        assert c.handshake_complete
    else:
        # The client completes on the server's flight and sends its Finished and a stream header together.
        assert c.receive_data(s.data_to_send()) == b""
        assert c.handshake_complete and not s.handshake_complete
        c.send(b"<stream:stream to='a.example'>")
        assert s.receive_data(c.data_to_send()) == b"<stream:stream to='a.example'>"
        assert s.handshake_complete
        assert s.peer_certificate().valid_for("b.example")


def test_application_data_both_ways_and_split_records(pki: Pki) -> None:
    c, s = connect(pki, client=pki.creds("b.example"))
    big = bytes(range(256)) * 400  # 100 KiB: several records
    c.send(big)
    records = c.data_to_send()
    received = b"".join(s.receive_data(records[i : i + 7]) for i in range(0, len(records), 7))
    assert received == big
    s.send(b"<features/>")
    s.send(b"<proceed/>")
    assert pump(c, s) == (b"<features/><proceed/>", b"")


def test_close_notify(pki: Pki) -> None:
    c, s = connect(pki)
    s.send(b"bye")
    s.close()
    s.close()  # idempotent
    got, _ = pump(c, s)
    assert got == b"bye"
    assert c.closed_by_peer
    with pytest.raises(TlsError):
        s.send(b"after close")
    c.close()
    assert c.data_to_send()  # our close_notify in reply


def test_garbage_is_a_tls_error(pki: Pki) -> None:
    s = TlsSession(server_context({"a.example": pki.creds("a.example")}, pki.trust), server_side=True)
    with pytest.raises(TlsError):
        s.receive_data(b"<?xml version='1.0'?><stream:stream>" + b"\x00" * 64)
    with pytest.raises(TlsError, match="failed"):
        s.receive_data(b"more")


def test_version_mismatch_fails_handshake(pki: Pki) -> None:
    sctx = server_context({"a.example": pki.creds("a.example")}, pki.trust)
    sctx._default.set_min_proto_version(SSL.TLS1_3_VERSION)
    c = TlsSession(_tls12_only(client_context(None, pki.trust)), server_side=False, server_name="a.example")
    s = TlsSession(sctx, server_side=True)
    c.start()
    with pytest.raises(TlsError, match="protocol"):
        s.receive_data(c.data_to_send())
    with pytest.raises(TlsError):
        c.receive_data(s.data_to_send())


def test_renegotiation_refused(pki: Pki) -> None:
    """TLS 1.2 client-initiated renegotiation: the server refuses (no_renegotiation alert) and reports it;
    the client, refused, fails too. (TLS 1.3 has no renegotiation.)"""
    sctx = server_context({"a.example": pki.creds("a.example")}, pki.trust)
    foreign = SSL.Context(SSL.TLS_METHOD)  # a peer that does renegotiate: no OP_NO_RENEGOTIATION
    foreign.set_max_proto_version(SSL.TLS1_2_VERSION)
    c = TlsSession(TlsContext(foreign, server_side=False), server_side=False, server_name="a.example")
    s = TlsSession(sctx, server_side=True)
    c.start()
    pump(c, s)
    assert s.handshake_complete and s.version == "TLSv1.2"
    assert c._ssl().renegotiate()
    with pytest.raises(SSL.WantReadError):
        c._ssl().do_handshake()  # the new ClientHello
    with pytest.raises(TlsError, match="renegotiation"):
        s.receive_data(c.data_to_send())
    with pytest.raises(TlsError):
        c.receive_data(s.data_to_send())
    with pytest.raises(TlsError):
        s.send(b"after")


@pytest.mark.parametrize("tls12", [False, True], ids=["tls1.3", "tls1.2"])
def test_no_session_resumption(pki: Pki, tls12: bool) -> None:
    """A resumed session would skip verification; the server offers none, so every handshake verifies."""
    sctx = server_context({"a.example": pki.creds("a.example")}, pki.trust)
    cctx = client_context(pki.creds("b.example"), pki.trust)
    if tls12:
        _tls12_only(cctx)
    first_c, first_s = TlsSession(cctx, server_side=False), TlsSession(sctx, server_side=True)
    first_c.start()
    pump(first_c, first_s)
    session = first_c._ssl().get_session()
    second_c, second_s = TlsSession(cctx, server_side=False), TlsSession(sctx, server_side=True)
    if session is not None:
        second_c._ssl().set_session(session)
    second_c.start()
    pump(second_c, second_s)
    assert second_s.handshake_complete
    assert second_s.peer_certificate().chain_valid
    assert second_s.peer_certificate().valid_for("b.example")


# -- hibernation: an idle TLS 1.3 session hands its records over from OpenSSL to fedgate.tls13 ----------------


def _suite_connect(pki: Pki, suite: str) -> tuple[TlsSession, TlsSession]:
    sctx = server_context({"a.example": pki.creds("a.example")}, pki.trust)
    sctx._default.set_tls13_ciphersuites(suite.encode())
    c = TlsSession(client_context(pki.creds("b.example"), pki.trust), server_side=False, server_name="a.example")
    s = TlsSession(sctx, server_side=True)
    c.start()
    pump(c, s)
    assert s.cipher == suite
    return c, s


@pytest.mark.parametrize("suite", ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"])
@pytest.mark.parametrize("first", ["server", "client"])
def test_hibernated_sessions_carry_data_both_ways(pki: Pki, suite: str, first: str) -> None:
    c, s = _suite_connect(pki, suite)
    assert pump(c, s) == (b"", b"")
    s.send(b"<a/>")
    c.send(b"<b/>")
    assert pump(c, s) == (b"<a/>", b"<b/>")
    one, other = (s, c) if first == "server" else (c, s)
    conn = weakref.ref(one._ssl())
    assert one.hibernate() and one.hibernated
    assert conn() is None  # OpenSSL's SSL object is gone at once, not at the next cycle collection
    big = bytes(range(256)) * 400  # 100 kB: seven records
    for _ in range(2):
        one.send(big)
        other.send(b"<c/>")
        got_c, got_s = pump(c, s)
        assert (got_c, got_s) == ((big, b"<c/>") if one is s else (b"<c/>", big))
        assert other.hibernate()  # and then both
    assert s.version == c.version == "TLSv1.3" and s.cipher == c.cipher == suite
    status = s.peer_certificate()
    assert status.chain_valid and status.valid_for("b.example")  # the status stays; the chain does not
    with pytest.raises(TlsError):
        s.peer_chain_der()
    one.close()
    pump(c, s)
    assert other.closed_by_peer and not one.closed_by_peer


def test_hibernated_server_with_a_stdlib_client(pki: Pki) -> None:
    """The peer is another TLS stack (CPython's ssl on the system's OpenSSL), which also reads the server's
    two session tickets: the counted sequence numbers must match what it expects."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    creds = pki.creds("b.example")
    ctx.load_cert_chain(creds.cert_chain, creds.key)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ctx.wrap_bio(incoming, outgoing, server_hostname="a.example")
    s = TlsSession(server_context({"a.example": pki.creds("a.example")}, pki.trust), server_side=True)
    for _ in range(5):
        with contextlib.suppress(ssl.SSLWantReadError):
            client.do_handshake()
        if outgoing.pending:
            s.receive_data(outgoing.read())
            incoming.write(s.data_to_send())
    assert s.handshake_complete and s.version == "TLSv1.3"
    client.write(b"<before/>")
    assert s.receive_data(outgoing.read()) == b"<before/>"
    assert s.hibernate()
    for n in range(3):
        s.send(b"<reply n='%d'/>" % n)
        incoming.write(s.data_to_send())
        assert client.read(100) == b"<reply n='%d'/>" % n
        client.write(b"<more/>")
        assert s.receive_data(outgoing.read()) == b"<more/>"
    s.close()
    incoming.write(s.data_to_send())
    assert client.read(100) == b""  # close_notify (with no alert, SSLWantReadError)


def test_no_hibernation_in_the_middle_of_a_record_or_with_unsent_bytes(pki: Pki) -> None:
    c, s = connect(pki, client=pki.creds("b.example"))
    pump(c, s)
    c.send(b"<stanza>" + b"x" * 3000 + b"</stanza>")
    record = c.data_to_send()
    assert s.receive_data(record[:1000]) == b""
    assert not s.hibernate()  # OpenSSL holds a partial record
    got = s.receive_data(record[1000:])
    assert got.startswith(b"<stanza>")
    s.send(b"<unsent/>")
    assert not s.hibernate()  # a record not yet taken by data_to_send()
    c.receive_data(s.data_to_send())
    assert s.hibernate()


def test_no_hibernation_for_tls12_or_after_a_key_update(pki: Pki) -> None:
    c, s = connect(pki, client=pki.creds("b.example"), tls12=True)
    assert not s.hibernate() and not c.hibernate()
    s.send(b"<still-works/>")
    assert pump(c, s) == (b"<still-works/>", b"")

    c, s = connect(pki, client=pki.creds("b.example"))
    assert c.hibernate()
    assert c._records is not None
    c._records.key_update(request_peer_update=True)  # OpenSSL changes keys on both sides of its session
    c.send(b"<after-update/>")
    assert pump(c, s) == (b"", b"<after-update/>")
    assert not s.hibernate()  # the counted sequence numbers no longer hold: it stays with OpenSSL
    s.send(b"<answer/>")
    assert pump(c, s) == (b"<answer/>", b"")


def test_a_tampered_record_after_hibernation_is_a_tls_error(pki: Pki) -> None:
    c, s = connect(pki, client=pki.creds("b.example"))
    pump(c, s)
    assert s.hibernate()
    c.send(b"<stanza/>")
    record = bytearray(c.data_to_send())
    record[-1] ^= 1
    with pytest.raises(TlsError, match="bad_record_mac"):
        s.receive_data(bytes(record))
    alert = s.data_to_send()
    assert alert  # the fatal alert, for the peer
    with pytest.raises(TlsError):
        c.receive_data(alert)


def test_record_counter_counts_records_however_the_bytes_are_split() -> None:
    import random

    from fedgate.tls import _RecordCounter

    rng = random.Random(8446)
    for _ in range(200):
        lengths = [rng.choice([0, 1, 17, 300, 16401]) for _ in range(rng.randint(1, 12))]
        stream = b"".join(b"\x17\x03\x03" + n.to_bytes(2, "big") + bytes(n) for n in lengths)
        cut = rng.randint(0, len(stream))  # the counter sees only a prefix: maybe mid-header or mid-body
        counter, position = _RecordCounter(), 0
        while position < cut:
            step = rng.choice([1, 2, 3, 5, 7, 64, 4096, 20000])
            counter.feed(stream[position:min(cut, position + step)])
            position = min(cut, position + step)
        ends, offset = [], 0
        for n in lengths:
            offset += 5 + n
            ends.append(offset)
        assert counter.records == sum(1 for end in ends if end <= cut)
        assert counter.at_boundary == (cut == 0 or cut in ends)
