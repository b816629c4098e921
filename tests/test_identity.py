from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fedgate.certs import TestCA, der_ia5, der_utf8
from fedgate.identity import (
    ID_ON_DNSSRV,
    ID_ON_XMPPADDR,
    CertificateNames,
    certificate_names,
    matches_domain,
    normalize_domain,
)

_KEY = ec.generate_private_key(ec.SECP256R1())


def _cert(*san: x509.GeneralName, cn: str = "cn.example") -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_KEY.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    return builder.sign(_KEY, hashes.SHA256())


def _srv(name: str) -> x509.OtherName:
    return x509.OtherName(ID_ON_DNSSRV, der_ia5(name))


def _xmpp(addr: str) -> x509.OtherName:
    return x509.OtherName(ID_ON_XMPPADDR, der_utf8(addr))


def test_names_from_issued_certificate(tmp_path: Path) -> None:
    ca = TestCA.create(tmp_path)
    files = ca.issue("a.example", tmp_path, dns_names=["a.example", "*.a.example"], xmpp_addr=True)
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    assert certificate_names(cert) == CertificateNames(
        dns_ids=("a.example", "*.a.example"),
        srv_ids=("_xmpp-server.a.example",),
        xmpp_addrs=("a.example",),
        common_name="a.example",
    )
    assert matches_domain(cert, "a.example")
    assert matches_domain(cert, "conference.a.example")
    assert not matches_domain(cert, "b.example")


def test_names_keep_only_xmpp_server_srv_ids() -> None:
    cert = _cert(_srv("_xmpp-client.a.example"), _srv("_XMPP-Server.a.example"), x509.DNSName("x.example"))
    names = certificate_names(cert)
    assert names.srv_ids == ("_XMPP-Server.a.example",)
    assert names.dns_ids == ("x.example",)


def test_no_san() -> None:
    cert = _cert(cn="a.example")
    assert certificate_names(cert) == CertificateNames(common_name="a.example")
    assert not matches_domain(cert, "a.example")  # no commonName fallback


@pytest.mark.parametrize(
    ("san", "domain", "expected"),
    [
        (x509.DNSName("a.example"), "a.example", True),
        (x509.DNSName("A.Example"), "a.EXAMPLE.", True),
        (x509.DNSName("a.example"), "b.example", False),
        (x509.DNSName("*.a.example"), "muc.a.example", True),
        (x509.DNSName("*.a.example"), "a.example", False),
        (x509.DNSName("*.a.example"), "x.muc.a.example", False),
        (x509.DNSName("*.example"), "a.example", False),  # too few labels for a wildcard
        (x509.DNSName("*.a.example"), "xn--bcher-kva.a.example", False),  # no wildcard over an A-label
        (x509.DNSName("xn--bcher-kva.example"), "bücher.example", True),
        (x509.DNSName("xn--bcher-kva.example"), "BÜCHER.example", True),
        (_srv("_xmpp-server.a.example"), "a.example", True),
        (_srv("_xmpp-server.a.example"), "b.example", False),
        (_srv("_xmpp-client.a.example"), "a.example", False),
        (_srv("_xmpp-server.xn--bcher-kva.example"), "bücher.example", True),
        (_xmpp("a.example"), "a.example", True),
        (_xmpp("bücher.example"), "xn--bcher-kva.example", True),
        (_xmpp("user@a.example"), "a.example", False),
        (_xmpp("a.example/resource"), "a.example", False),
        (x509.OtherName(ID_ON_XMPPADDR, der_ia5("a.example")), "a.example", False),  # wrong string type
        (x509.OtherName(ID_ON_XMPPADDR, b"\x30\x0b" + der_utf8("a.example")), "a.example", False),  # a SEQUENCE
    ],
)
def test_matches_domain(san: x509.GeneralName, domain: str, expected: bool) -> None:
    assert matches_domain(_cert(san, cn=domain), domain) is expected


def test_malformed_name_does_not_hide_good_ones() -> None:
    cert = _cert(x509.DNSName("*.*.example"), _srv("_xmpp-server.*.example"), x509.DNSName("a.example"))
    assert matches_domain(cert, "a.example")
    assert not matches_domain(cert, "b.example")


@pytest.mark.parametrize("domain", ["", ".", "127.0.0.1", "a b.example", "a..example"])
def test_bad_domains_never_match(domain: str) -> None:
    assert not matches_domain(_cert(x509.DNSName("a.example")), domain)


def test_normalize_domain() -> None:
    assert normalize_domain("Bücher.Example.") == "xn--bcher-kva.example"
    assert normalize_domain("A.EXAMPLE") == "a.example"
    with pytest.raises(ValueError):
        normalize_domain("")


def test_domains_compare_by_the_partner_rules_idna_2008() -> None:
    """A certificate, an SNI name and a partner record must normalise alike: IDNA 2008 with UTS 46 mapping."""
    from fedgate.partners import normalize_domain as partner_domain

    for typed in ("faß.example", "Bücher.Example.", "ＥＸＡＭＰＬＥ。org"):
        assert normalize_domain(typed) == partner_domain(typed.rstrip("."))
    assert normalize_domain("faß.example") == "xn--fa-hia.example"  # IDNA 2003 made it fass.example
    for bad in ("☃.example", "xn--zz.example", ""):
        with pytest.raises(ValueError):
            normalize_domain(bad)
