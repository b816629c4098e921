"""RFC 6125 / XEP-0178 identity checks: is this certificate one for that XMPP domain?

A certificate is valid for ``domain`` when its subjectAltName holds any of (RFC 6120 section 13.7.2.1):

- a DNS-ID matching the domain, wildcards by RFC 6125 rules (left-most label only, never over an A-label),
- an SRV-ID ``_xmpp-server.DOMAIN`` (RFC 4985 SRVName),
- an XmppAddr (id-on-xmppAddr otherName) equal to the domain.

DNS-ID and SRV-ID matching is service-identity's; the XmppAddr is parsed here. The subject commonName is
reported but never matched: RFC 6125 allows it only without a subjectAltName, and XMPP practice is not to.
Names compare after IDNA normalisation to lower-case A-labels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier
from service_identity.exceptions import CertificateError
from service_identity.hazmat import DNS_ID, SRV_ID, DNSPattern, SRVPattern

from fedgate.partners import normalize_domain as _normalize_partner_domain

__all__ = [
    "ID_ON_DNSSRV",
    "ID_ON_XMPPADDR",
    "XMPP_SERVER_SRV_PREFIX",
    "CertificateNames",
    "certificate_names",
    "matches_domain",
    "names_match_domain",
    "normalize_domain",
]

ID_ON_DNSSRV = ObjectIdentifier("1.3.6.1.5.5.7.8.7")  # RFC 4985 SRVName, value an IA5String
ID_ON_XMPPADDR = ObjectIdentifier("1.3.6.1.5.5.7.8.5")  # RFC 6120 section 13.7.1.4, value a UTF8String
XMPP_SERVER_SRV_PREFIX = "_xmpp-server."

_UTF8STRING = 0x0C
_IA5STRING = 0x16


@functools.lru_cache(maxsize=4096)  # SNI, certificate names and routes ask for the same few domains
def normalize_domain(domain: str) -> str:
    """``domain`` as lower-case A-labels without a trailing dot, by the same rules as partner domains (IDNA 2008
    with UTS 46 mapping, :func:`fedgate.partners.normalize_domain`), so a certificate, an SNI name and a partner
    record compare alike. Raises ``ValueError`` if it is not a domain."""
    return _normalize_partner_domain(domain.strip())


@dataclass(frozen=True)
class CertificateNames:
    """The identities a certificate presents, as written in it (DNS-IDs may be wildcards)."""

    dns_ids: tuple[str, ...] = ()
    srv_ids: tuple[str, ...] = ()  # only ``_xmpp-server.`` SRVNames, in full: ``_xmpp-server.example.org``
    xmpp_addrs: tuple[str, ...] = ()
    common_name: str | None = None


def _der_string(data: bytes, tag: int) -> str | None:
    """The text of a DER string with ``tag``, or None when ``data`` is not exactly one such value."""
    if len(data) < 2 or data[0] != tag:
        return None
    length, offset = data[1], 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or len(data) < 2 + n:
            return None
        length, offset = int.from_bytes(data[2 : 2 + n], "big"), 2 + n
    if len(data) != offset + length:
        return None
    try:
        return data[offset:].decode("utf-8" if tag == _UTF8STRING else "ascii")
    except UnicodeDecodeError:
        return None


def certificate_names(cert: x509.Certificate) -> CertificateNames:
    """The DNS-IDs, ``_xmpp-server`` SRV-IDs, XmppAddrs and commonName of ``cert``."""
    cn_attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn_value = cn_attrs[0].value if cn_attrs else None
    common_name = cn_value if isinstance(cn_value, str) else None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return CertificateNames(common_name=common_name)
    srv_ids: list[str] = []
    xmpp_addrs: list[str] = []
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == ID_ON_DNSSRV:
            srv = _der_string(other.value, _IA5STRING)
            if srv is not None and srv.lower().startswith(XMPP_SERVER_SRV_PREFIX):
                srv_ids.append(srv)
        elif other.type_id == ID_ON_XMPPADDR:
            addr = _der_string(other.value, _UTF8STRING)
            if addr is not None:
                xmpp_addrs.append(addr)
    return CertificateNames(
        dns_ids=tuple(san.get_values_for_type(x509.DNSName)),
        srv_ids=tuple(srv_ids),
        xmpp_addrs=tuple(xmpp_addrs),
        common_name=common_name,
    )


def _dns_patterns(names: CertificateNames) -> list[DNSPattern | SRVPattern]:
    patterns: list[DNSPattern | SRVPattern] = []
    for dns in names.dns_ids:
        try:
            patterns.append(DNSPattern.from_bytes(dns.encode("ascii")))
        except (CertificateError, UnicodeError):
            continue  # a malformed name matches nothing; the others still count
    for srv in names.srv_ids:
        try:
            patterns.append(SRVPattern.from_bytes(srv.encode("ascii")))
        except (CertificateError, UnicodeError):
            continue
    return patterns


def matches_domain(cert: x509.Certificate, domain: str) -> bool:
    """Whether ``cert`` identifies the XMPP server ``domain`` (DNS-ID, SRV-ID or XmppAddr; never the CN)."""
    return names_match_domain(certificate_names(cert), domain)


def names_match_domain(names: CertificateNames, domain: str) -> bool:
    """:func:`matches_domain` from the names already read out of a certificate."""
    try:
        wanted = normalize_domain(domain)
        service_ids = (DNS_ID(wanted), SRV_ID(XMPP_SERVER_SRV_PREFIX + wanted))
    except ValueError:
        return False
    for addr in names.xmpp_addrs:
        try:
            if normalize_domain(addr) == wanted:
                return True
        except ValueError:
            continue
    return any(sid.verify(pattern) for pattern in _dns_patterns(names) for sid in service_ids)
