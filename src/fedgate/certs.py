"""A private test CA and certificates for ``fedgate init --dev`` and the test suite.

Keys are ECDSA P-256: generating one takes a millisecond and handshakes are fast, and Prosody 0.12 handles
them. Leaf certificates carry what an XMPP server certificate carries in practice: SAN DNS names, an
SRVName ``_xmpp-server.DOMAIN`` (RFC 4985) and optionally an XmppAddr (RFC 6120 section 13.7.1.4), and
``extendedKeyUsage`` serverAuth + clientAuth, because a server uses the one certificate in both directions.

Files: certificates and chains are written 0644; keys 0600 unless ``key_mode`` says otherwise (a peer
running as another user, such as Prosody under ``prosody``, needs 0640 plus a ``chown`` by the caller).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedgate.identity import ID_ON_DNSSRV, ID_ON_XMPPADDR, XMPP_SERVER_SRV_PREFIX, normalize_domain

__all__ = ["ID_ON_DNSSRV", "ID_ON_XMPPADDR", "CertFiles", "KeyUsageProfile", "TestCA", "der_ia5", "der_utf8"]

KeyUsageProfile = Literal["server_and_client", "server_only", "client_only", "wrong"]

_CA_CERT = "ca.crt"
_CA_KEY = "ca.key"
_PUBLIC_MODE = 0o644


@dataclass(frozen=True)
class CertFiles:
    """Where :meth:`TestCA.issue` wrote a certificate: the leaf, its key, and the chain (leaf + issuing CA)."""

    cert: Path
    key: Path
    chain: Path


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def der_utf8(text: str) -> bytes:
    """DER UTF8String, the value of an XmppAddr otherName."""
    return _der(0x0C, text.encode("utf-8"))


def der_ia5(text: str) -> bytes:
    """DER IA5String, the value of an SRVName otherName."""
    return _der(0x16, text.encode("ascii"))


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask and an existing file's mode must not decide
        os.write(fd, data)
    finally:
        os.close(fd)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=key_cert_sign, crl_sign=crl_sign,
        encipher_only=False, decipher_only=False,
    )


def _dns_name(name: str) -> str:
    """A dNSName for a certificate: a domain, or a wildcard ``*.`` before one (RFC 6125 6.4.3)."""
    return "*." + normalize_domain(name[2:]) if name.startswith("*.") else normalize_domain(name)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


class TestCA:
    """A certificate authority on disk (``ca.crt``, ``ca.key``) that issues leaf certificates."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, directory: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.directory = directory
        self.cert = cert
        self.key = key

    @property
    def cert_path(self) -> Path:
        """``ca.crt``: the trust anchor peers use (Prosody's ``ssl.cafile``, our trust store)."""
        return self.directory / _CA_CERT

    @property
    def key_path(self) -> Path:
        return self.directory / _CA_KEY

    @classmethod
    def create(cls, directory: Path, name: str = "fedgate test CA") -> TestCA:
        """A new CA, written to ``directory/ca.crt`` (0644) and ``directory/ca.key`` (0600)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        _write(directory / _CA_KEY, _key_pem(key), 0o600)
        _write(directory / _CA_CERT, _pem(cert), _PUBLIC_MODE)
        return cls(directory, cert, key)

    @classmethod
    def load(cls, directory: Path) -> TestCA:
        """The CA that :meth:`create` wrote to ``directory``."""
        directory = Path(directory)
        cert = x509.load_pem_x509_certificate((directory / _CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((directory / _CA_KEY).read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{directory / _CA_KEY}: not an EC private key")
        return cls(directory, cert, key)

    def issue(
        self,
        domain: str,
        directory: Path,
        *,
        dns_names: Sequence[str] | None = None,
        srv_names: bool = True,
        xmpp_addr: bool = False,
        expired: bool = False,
        not_yet_valid: bool = False,
        key_usage: KeyUsageProfile = "server_and_client",
        self_signed: bool = False,
        basename: str | None = None,
        key_mode: int = 0o600,
    ) -> CertFiles:
        """Issue a leaf certificate for ``domain`` into ``directory``.

        Files are ``BASENAME.crt``, ``BASENAME.key`` and ``BASENAME-chain.pem`` (leaf then CA; for a
        self-signed certificate the leaf alone); ``BASENAME`` defaults to the domain.

        ``dns_names`` defaults to ``[domain]`` (pass ``[]`` for none); ``srv_names`` adds the SRVName
        ``_xmpp-server.DOMAIN``; ``xmpp_addr`` adds an XmppAddr ``DOMAIN``. ``key_usage="wrong"`` makes a
        certificate unusable for TLS (keyUsage keyCertSign only, extendedKeyUsage codeSigning).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        ascii_domain = normalize_domain(domain)
        names = [ascii_domain] if dns_names is None else [_dns_name(n) for n in dns_names]

        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ascii_domain)])
        now = _now()
        if expired:
            not_before, not_after = now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)
        elif not_yet_valid:
            not_before, not_after = now + datetime.timedelta(days=1), now + datetime.timedelta(days=30)
        else:
            not_before, not_after = now - datetime.timedelta(days=1), now + datetime.timedelta(days=365)

        san: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        if srv_names:
            san.append(x509.OtherName(ID_ON_DNSSRV, der_ia5(XMPP_SERVER_SRV_PREFIX + ascii_domain)))
        if xmpp_addr:
            san.append(x509.OtherName(ID_ON_XMPPADDR, der_utf8(domain)))

        signing_key: ec.EllipticCurvePrivateKey = key if self_signed else self.key
        issuer = subject if self_signed else self.cert.subject
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False
            )
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        wrong = key_usage == "wrong"
        builder = builder.add_extension(_key_usage(digital_signature=not wrong, key_cert_sign=wrong), critical=True)
        eku = {
            "server_and_client": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            "server_only": [ExtendedKeyUsageOID.SERVER_AUTH],
            "client_only": [ExtendedKeyUsageOID.CLIENT_AUTH],
            "wrong": [ExtendedKeyUsageOID.CODE_SIGNING],
        }[key_usage]
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        cert = builder.sign(signing_key, hashes.SHA256())

        base = basename or ascii_domain
        files = CertFiles(
            cert=directory / f"{base}.crt", key=directory / f"{base}.key", chain=directory / f"{base}-chain.pem"
        )
        _write(files.key, _key_pem(key), key_mode)
        _write(files.cert, _pem(cert), _PUBLIC_MODE)
        _write(files.chain, _pem(cert) + (b"" if self_signed else _pem(self.cert)), _PUBLIC_MODE)
        return files
