from __future__ import annotations

import datetime
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from fedgate.certs import ID_ON_DNSSRV, ID_ON_XMPPADDR, CertFiles, TestCA, der_ia5, der_utf8


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA.create(tmp_path_factory.mktemp("ca"))


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_writes_ca_files_with_modes(ca: TestCA) -> None:
    assert ca.cert_path == ca.directory / "ca.crt"
    assert _mode(ca.cert_path) == 0o644
    assert _mode(ca.key_path) == 0o600
    cert = _load(ca.cert_path)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def test_load_round_trips(ca: TestCA) -> None:
    again = TestCA.load(ca.directory)
    assert again.cert == ca.cert
    assert again.key.private_numbers() == ca.key.private_numbers()


def test_issue_default_leaf(ca: TestCA, tmp_path: Path) -> None:
    files = ca.issue("a.example", tmp_path)
    assert files == CertFiles(tmp_path / "a.example.crt", tmp_path / "a.example.key", tmp_path / "a.example-chain.pem")
    assert _mode(files.key) == 0o600
    assert _mode(files.cert) == 0o644
    assert _mode(files.chain) == 0o644
    cert = _load(files.cert)
    assert cert.issuer == ca.cert.subject
    cert.verify_directly_issued_by(ca.cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.example"]
    assert x509.OtherName(ID_ON_DNSSRV, der_ia5("_xmpp-server.a.example")) in san
    assert not [n for n in san if isinstance(n, x509.OtherName) and n.type_id == ID_ON_XMPPADDR]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    chain = x509.load_pem_x509_certificates(files.chain.read_bytes())
    assert chain == [cert, ca.cert]


def test_issue_options(ca: TestCA, tmp_path: Path) -> None:
    files = ca.issue(
        "b.example", tmp_path, dns_names=["*.b.example", "b.example"], srv_names=False, xmpp_addr=True,
        basename="bee", key_mode=0o640,
    )
    assert files.cert.name == "bee.crt"
    assert _mode(files.key) == 0o640
    san = _load(files.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["*.b.example", "b.example"]
    assert list(san.get_values_for_type(x509.OtherName)) == [x509.OtherName(ID_ON_XMPPADDR, der_utf8("b.example"))]


def test_issue_validity_and_usage_variants(ca: TestCA, tmp_path: Path) -> None:
    now = datetime.datetime.now(datetime.UTC)
    expired = _load(ca.issue("c.example", tmp_path, expired=True, basename="exp").cert)
    assert expired.not_valid_after_utc < now
    future = _load(ca.issue("c.example", tmp_path, not_yet_valid=True, basename="fut").cert)
    assert future.not_valid_before_utc > now
    wrong = _load(ca.issue("c.example", tmp_path, key_usage="wrong", basename="wrong").cert)
    assert list(wrong.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CODE_SIGNING
    ]
    assert wrong.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    server = _load(ca.issue("c.example", tmp_path, key_usage="server_only", basename="srv").cert)
    assert list(server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]


def test_issue_self_signed(ca: TestCA, tmp_path: Path) -> None:
    files = ca.issue("d.example", tmp_path, self_signed=True)
    cert = _load(files.cert)
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert x509.load_pem_x509_certificates(files.chain.read_bytes()) == [cert]


def test_issue_idna_domain(ca: TestCA, tmp_path: Path) -> None:
    files = ca.issue("Bücher.Example", tmp_path, xmpp_addr=True)
    assert files.cert.name == "xn--bcher-kva.example.crt"
    san = _load(files.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["xn--bcher-kva.example"]


def test_der_long_length() -> None:
    value = der_utf8("x" * 300)
    assert value[:4] == bytes([0x0C, 0x82, 0x01, 0x2C])
    assert len(value) == 304
