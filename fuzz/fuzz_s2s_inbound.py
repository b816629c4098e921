"""Atheris harness: the receiving S2S machine (``fedgate.s2s.InboundStream``) on arbitrary peer bytes.

The input chooses the partner's settings, whether the TLS handshake "completes" after ``<proceed/>`` and
whether the peer certificate is valid, how the bytes are cut, and the bytes themselves (mostly after a valid
stream header, and with answers to connect-backs interleaved). Findings: any exception out of
``receive_data`` or ``dialback_verified``; an ``Authenticated`` event for a method the settings rule out, for
a domain other than the stream's or a dialback-verified one, or SASL without TLS and a valid certificate; a
``StanzaReceived`` before any authentication or from a domain not authenticated; bytes written after the
stream was closed; output that is not a well-formed XMPP stream. See fuzz/README.md.
"""

from __future__ import annotations

import contextlib
import itertools
import sys

import atheris

with atheris.instrument_imports():
    from fedgate.errors import StreamError
    from fedgate.policy import Method, Settings, allows
    from fedgate.s2s import (
        Authenticated,
        DialbackVerifyRequested,
        InboundStream,
        S2SContext,
        StanzaReceived,
        StartTlsNow,
        StreamClosed,
        TlsInfo,
    )
    from fedgate.xmlstream import XmlStreamParser

LEVELS = ("required", "optional", "not_supported")
ALL_SETTINGS = []
for _t, _s, _d in itertools.product(LEVELS, LEVELS, (True, False)):
    with contextlib.suppress(Exception):
        ALL_SETTINGS.append(Settings.parse_triple(f"{_t}/{_s}/{str(_d).lower()}"))

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'"
    b" xmlns:db='jabber:server:dialback' to='a.test' from='b.test' version='1.0'>"
)
PIECES = [
    b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>",
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>Yi50ZXN0</auth>",
    b"<db:result from='b.test' to='a.test'>abcdef</db:result>",
    b"<db:result from='c.test' to='a.test'>abcdef</db:result>",
    b"<db:verify from='b.test' to='a.test' id='x'>abcdef</db:verify>",
    b"<message from='u@b.test' to='v@a.test'><body>hi</body></message>",
    b"<message from='u@c.test' to='v@a.test'><body>hi</body></message>",
    b"<iq from='b.test' to='a.test' type='get' id='1'/>",
    HEADER,
    b"</stream:stream>",
]


class Cert:
    def __init__(self, valid: bool) -> None:
        self._valid = valid

    @property
    def presented(self) -> bool:
        return True

    @property
    def chain_valid(self) -> bool:
        return self._valid

    def valid_for(self, domain: str) -> bool:
        return self._valid and domain == "b.test"


def _check_output(checker: XmlStreamParser, out: bytes, restart_allowed: bool) -> XmlStreamParser:
    """Feed what the machine wrote to a parser of its own; a new stream header is allowed after a restart."""
    if not out:
        return checker
    if restart_allowed and out.startswith(b"<?xml"):
        checker = XmlStreamParser(max_stanza_size=1 << 20)
    try:
        checker.feed(out)
    except StreamError as exc:
        raise AssertionError(f"the machine wrote an ill-formed stream ({exc}): {out!r}") from exc
    return checker


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    settings_b = ALL_SETTINGS[fdp.ConsumeIntInRange(0, len(ALL_SETTINGS) - 1)]
    settings_c = ALL_SETTINGS[fdp.ConsumeIntInRange(0, len(ALL_SETTINGS) - 1)] if fdp.ConsumeBool() else None
    cert_valid = fdp.ConsumeBool()
    tls_works = fdp.ConsumeBool()
    partners = {"b.test": settings_b, **({"c.test": settings_c} if settings_c else {})}
    ctx = S2SContext(
        is_local_domain=lambda d: d == "a.test",
        settings_for=partners.get,
        dialback_secret="s3cret",
        max_stanza_size=fdp.ConsumeIntInRange(256, 8192),
        new_stream_id=lambda: "sid",
    )
    m = InboundStream(ctx)
    checker = XmlStreamParser(max_stanza_size=1 << 20)
    pending: list[DialbackVerifyRequested] = []
    authenticated: set[str] = set()
    first = True
    restart_allowed = False
    while fdp.remaining_bytes():
        choice = fdp.ConsumeIntInRange(0, 15)
        was_closed = m.closed
        if pending and choice == 15:
            req = pending.pop(0)
            events = m.dialback_verified(req.originating, req.receiving, fdp.ConsumeBool(),
                                         "remote-server-timeout" if fdp.ConsumeBool() else None)
        else:
            if first and choice < 12:
                chunk = HEADER
            elif choice < len(PIECES):
                chunk = PIECES[choice]
            else:
                chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 512))
            if not chunk:
                continue
            events = m.receive_data(chunk)
        first = False
        for ev in events:
            if isinstance(ev, StartTlsNow):
                restart_allowed = True
                if tls_works:
                    m.tls_established(TlsInfo("TLSv1.3", "x", Cert(cert_valid)))
            elif isinstance(ev, DialbackVerifyRequested):
                pending.append(ev)
            elif isinstance(ev, Authenticated):
                restart_allowed = restart_allowed or ev.method is Method.SASL_TLS
                settings = partners[ev.remote_domain]
                if not allows(settings, ev.method):
                    raise AssertionError(f"{ev.method} authenticated against {settings}")
                if ev.method is Method.SASL_TLS and (not m.secure or not cert_valid or ev.remote_domain != "b.test"):
                    raise AssertionError("SASL EXTERNAL without TLS and a valid certificate for the stream's from")
                authenticated.add(ev.remote_domain)
            elif isinstance(ev, StanzaReceived):
                if ev.from_domain not in authenticated:
                    raise AssertionError(f"stanza from unauthenticated {ev.from_domain}")
            elif isinstance(ev, StreamClosed):
                pass
        out = m.data_to_send()
        if was_closed and out:
            raise AssertionError(f"bytes after the stream was closed: {out!r}")
        new_stream = restart_allowed and out.startswith(b"<?xml")
        checker = _check_output(checker, out, restart_allowed)
        if new_stream:
            restart_allowed = False


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
