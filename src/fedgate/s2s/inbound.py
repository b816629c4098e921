"""The receiving side of a server-to-server stream (a partner connected to us).

Features are offered from the partner's settings, and everything the partner does is checked against them:
STARTTLS (``<required/>`` when TLS is required), SASL EXTERNAL only over TLS with a certificate valid for the
stream's ``from`` domain, the dialback feature only where the settings allow dialback on this transport.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from xml.etree.ElementTree import Element, SubElement

from .. import dialback
from ..errors import StreamError
from ..policy import Exclusion, Method, Rule, Sasl, Settings, Tls, allows, exclusions
from ..xmlstream import StreamOpened as XmlStreamOpened
from . import sm
from .base import (
    FEATURES,
    SASL_NS,
    SERVER_NS,
    STANZA_TAGS,
    TLS_NS,
    S2SContext,
    StreamMachine,
    TlsInfo,
    check_version,
    domain_of,
    sasl_element,
)
from .events import (
    Authenticated,
    DialbackVerifyRequested,
    NegotiationFailed,
    S2SEvent,
    StanzaReceived,
    StanzaRefused,
    StartTlsNow,
    StreamClosed,
    StreamOpened,
)


class InboundStream(StreamMachine):
    direction = "in"

    def __init__(self, ctx: S2SContext) -> None:
        super().__init__(ctx)
        self.stream_id = ctx.new_stream_id()
        self.local_domain: str | None = None
        self.remote_domain: str | None = None
        self.settings: Settings | None = None
        # Domains authenticated on this stream -> method (piggy-backed dialback can add more than one).
        self.authenticated: dict[str, Method] = {}
        # What each authentication covers: (originating, receiving) domain pairs (XEP-0220 2.4, 2.5).
        self._pairs: set[tuple[str, str]] = set()
        self._pending_dialback: set[tuple[str, str]] = set()
        self._answered_verify = False
        self._awaiting_tls = False
        self._sasl_done = False
        self._offered_external = False
        # Refused because our domain has no certificate and TLS is needed: the failure says so.
        self._no_certificate = False
        # XEP-0198 (acknowledgements, no resumption): enabled by the peer after authentication; then
        # sm_handled counts the stanzas handed out (StanzaReceived, StanzaRefused), modulo 2^32.
        self.sm_enabled = False
        self.sm_handled = 0

    # -- called by the I/O layer ---------------------------------------------------------------------------
    def tls_established(self, info: TlsInfo) -> None:
        """The handshake after ``<proceed/>`` finished; the peer now opens a new stream."""
        self._awaiting_tls = False
        self.secure = True
        self.tls = info
        self._restart_stream()

    def dialback_verified(
        self, originating: str, receiving: str, valid: bool, error: str | None = None
    ) -> list[S2SEvent]:
        """The connect-back to ``originating``'s authoritative server answered (or failed with ``error``)."""
        events: list[S2SEvent] = []
        if self.closed or self.closing or (originating, receiving) not in self._pending_dialback:
            return events
        self._pending_dialback.discard((originating, receiving))
        if error:
            self._send(dialback.result_answer(receiving, originating, "error", error))
        elif valid:
            method = Method.TLS_DIALBACK if self.secure else Method.TCP_DIALBACK
            self.authenticated[originating] = method
            self._pairs.add((originating, receiving))
            self._send(dialback.result_answer(receiving, originating, "valid"))
            events.append(Authenticated(receiving, originating, method, "in"))
        else:
            self._send(dialback.result_answer(receiving, originating, "invalid"))
            self._fail(StreamError("not-authorized", "dialback key was not confirmed"), events)
        return events

    def send_stanza(self, el: Element) -> None:
        raise RuntimeError("inbound S2S streams carry stanzas one way only (RFC 6120 section 4.1)")

    # -- stream header and features ------------------------------------------------------------------------
    def _before_error_header(self) -> None:
        if not self._header_sent:
            self._write_header(to=None, from_=self.local_domain, stream_id=self.stream_id, dialback=False)

    def _on_header(self, ev: XmlStreamOpened, events: list[S2SEvent]) -> None:
        if ev.default_ns != SERVER_NS:
            raise StreamError("invalid-namespace", f"default namespace must be {SERVER_NS}")
        to = domain_of(ev.attrs.get("to"))
        from_ = domain_of(ev.attrs.get("from"))
        restart = self._header_sent
        if restart:
            # A restarted stream (after TLS or SASL) must keep its addresses.
            if to != self.local_domain or from_ != self.remote_domain:
                raise StreamError("invalid-from", "addresses changed across a stream restart")
        else:
            if to is None or not self._ctx.is_local_domain(to):
                raise StreamError("host-unknown", f"this gateway does not serve {to or '(no to)'}")
            self.local_domain = to
            if from_ is None:
                raise StreamError("invalid-from", "the stream header has no 'from' domain")
            settings = self._ctx.settings_for(from_)
            if settings is None:
                raise StreamError("policy-violation", f"{from_} is not a federated partner of {to}")
            self.remote_domain = from_
            self.settings = settings
        check_version(ev.attrs.get("version"))
        assert self.settings is not None
        if not restart and self.settings.tls is Tls.REQUIRED and not self._has_certificate():
            # TLS is required with this partner and we have no certificate to present for this domain: no
            # method can work. internal-server-error (RFC 6120 4.9.3.11) is what a misconfiguration of ours
            # is; the NegotiationFailed names the missing certificate.
            self._no_certificate = True
            raise StreamError("internal-server-error", f"no certificate for {to}, and TLS is required with {from_}")
        if restart:
            # RFC 6120 5.4.3.3 (after TLS) and 6.4.6 (after SASL): a new response header with a new stream ID,
            # never the old one.
            self.stream_id = self._ctx.new_stream_id()
        self._write_header(
            to=self.remote_domain, from_=self.local_domain, stream_id=self.stream_id, dialback=self.settings.dialback
        )
        events.append(StreamOpened(self.stream_id, self.remote_domain, self.local_domain))
        self._send(self._features())

    def _has_certificate(self) -> bool:
        return self.local_domain is not None and self._ctx.has_certificate(self.local_domain)

    def _dialback_method(self) -> Method:
        return Method.TLS_DIALBACK if self.secure else Method.TCP_DIALBACK

    def _features(self) -> Element:
        assert self.settings is not None and self.remote_domain is not None
        s = self.settings
        features = Element(FEATURES)
        if self._sasl_done:
            # RFC 6120 6.4.6: nothing is left to negotiate, and SASL is never offered twice. Stream Management
            # can be enabled now (XEP-0198 3: after authentication).
            self._offered_external = False
            sm.add_feature(features)
            return features
        if not self.secure and s.tls is not Tls.NOT_SUPPORTED and self._has_certificate():
            starttls = SubElement(features, f"{{{TLS_NS}}}starttls")
            if s.tls is Tls.REQUIRED:
                SubElement(starttls, f"{{{TLS_NS}}}required")
        self._offered_external = bool(
            self.secure
            and allows(s, Method.SASL_TLS)
            and self.tls is not None
            and self.tls.peer is not None
            and self.tls.peer.valid_for(self.remote_domain)
        )
        if self._offered_external:
            mechs = SubElement(features, f"{{{SASL_NS}}}mechanisms")
            SubElement(mechs, f"{{{SASL_NS}}}mechanism").text = "EXTERNAL"
        offer_dialback = allows(s, self._dialback_method()) and not (not self.secure and s.tls is Tls.REQUIRED)
        if offer_dialback:
            db = SubElement(features, f"{{{dialback.DIALBACK_FEATURE_NS}}}dialback")
            SubElement(db, f"{{{dialback.DIALBACK_FEATURE_NS}}}errors")
            # Dialback authenticates on this stream, with no restart: these are the last features the peer
            # sees, so Stream Management is offered here, for once the peer is authenticated.
            sm.add_feature(features)
        return features

    # -- elements ------------------------------------------------------------------------------------------
    def _on_element(self, el: Element, events: list[S2SEvent]) -> None:
        assert self.settings is not None
        tag = el.tag
        if self._awaiting_tls:
            raise StreamError("policy-violation", "data after <starttls/> before the TLS handshake")
        if tag == f"{{{TLS_NS}}}starttls":
            self._on_starttls(events)
            return
        if not self.secure and self.settings.tls is Tls.REQUIRED and not self.authenticated:
            raise StreamError("policy-violation", "TLS is required: STARTTLS must come first")
        if tag == f"{{{SASL_NS}}}auth":
            self._on_auth(el, events)
        elif tag == dialback.RESULT:
            self._on_db_result(el, events)
        elif tag == dialback.VERIFY:
            self._on_db_verify(el)
        elif tag in STANZA_TAGS:
            self._on_stanza(el, events)
        elif tag in sm.SM_TAGS:
            self._on_sm(el)
        else:
            raise StreamError("unsupported-stanza-type", f"unexpected element {tag}")

    def _on_starttls(self, events: list[S2SEvent]) -> None:
        assert self.settings is not None
        text = "STARTTLS not available"
        if not self.secure and not self._has_certificate():
            # Not offered (no certificate for this domain), asked for anyway: refused the same way.
            self._no_certificate = True
            text = f"STARTTLS not available: no certificate for {self.local_domain}"
        if (
            self._no_certificate
            or self.secure
            or self.settings.tls is Tls.NOT_SUPPORTED
            or self.authenticated
            or self._pending_dialback
        ):
            # RFC 6120 5.4.2.2: answer <failure/> and close the stream. With a dialback verification under way
            # the method it was checked for (TCP) would be authenticated as another (TLS): refused too.
            self._write(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            self._write_close()
            self.closed = True
            if self._no_certificate:
                self._on_failed_before_auth(events)
            events.append(StreamClosed("policy-violation", text, by_peer=False))
            return
        self._write(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self._awaiting_tls = True
        events.append(StartTlsNow())

    def _on_auth(self, el: Element, events: list[S2SEvent]) -> None:
        assert self.settings is not None and self.remote_domain is not None and self.local_domain is not None
        if not self.secure:
            self._send(sasl_element("failure", condition="encryption-required"))
            return
        if (
            el.get("mechanism") != "EXTERNAL"
            or not self._offered_external
            or self.remote_domain in self.authenticated  # already authenticated (dialback): no second method
        ):
            self._send(sasl_element("failure", condition="invalid-mechanism"))
            return
        payload = (el.text or "").strip()
        authzid = self.remote_domain
        if payload and payload != "=":  # "=": an empty response, no authorization identity (RFC 6120 6.4.2)
            try:
                authzid = base64.b64decode(payload, validate=True).decode("utf-8").lower()
            except (binascii.Error, UnicodeDecodeError):
                self._send(sasl_element("failure", condition="incorrect-encoding"))
                return
            # XEP-0178's own example encodes "conference.example.org\n" (an echo piped into base64); peers that
            # copied it send that newline. One trailing LF is forgiven, nothing else.
            authzid = authzid.removesuffix("\n")
        if authzid != self.remote_domain:
            self._send(sasl_element("failure", condition="invalid-authzid"))
            return
        self._send(sasl_element("success"))
        self._sasl_done = True
        self.authenticated[self.remote_domain] = Method.SASL_TLS
        self._pairs.add((self.remote_domain, self.local_domain))
        self._restart_stream()
        events.append(Authenticated(self.local_domain, self.remote_domain, Method.SASL_TLS, "in"))

    def _on_db_result(self, el: Element, events: list[S2SEvent]) -> None:
        assert self.settings is not None
        if not self.settings.dialback:
            # As Prosody does when its dialback module is off.
            raise StreamError("unsupported-stanza-type", "Server Dialback is not enabled for this partner")
        originating = domain_of(el.get("from"))
        receiving = domain_of(el.get("to"))
        key = (el.text or "").strip()
        if el.get("type") is not None:
            raise StreamError("unsupported-stanza-type", "unsolicited dialback result")
        if not originating or not receiving or not key:
            raise StreamError("improper-addressing", "db:result needs from, to and a key")
        if not self._ctx.is_local_domain(receiving):
            self._send(dialback.result_answer(receiving, originating, "error", "item-not-found"))
            return
        settings = self.settings if originating == self.remote_domain else self._ctx.settings_for(originating)
        if settings is None:
            self._send(dialback.result_answer(receiving, originating, "error", "forbidden"))
            return
        method = self._dialback_method()
        if not allows(settings, method):
            self._send(dialback.result_answer(receiving, originating, "error", "policy-violation"))
            return
        if (originating, receiving) in self._pairs:
            self._send(dialback.result_answer(receiving, originating, "valid"))
            return
        if (originating, receiving) in self._pending_dialback:
            return
        self._pending_dialback.add((originating, receiving))
        events.append(DialbackVerifyRequested(originating, receiving, key, self.stream_id))

    def _on_db_verify(self, el: Element) -> None:
        # The peer received a connection "from" one of our domains and asks whether we generated the key.
        receiving = domain_of(el.get("from"))
        originating = domain_of(el.get("to"))
        stream_id = el.get("id")
        key = (el.text or "").strip()
        if el.get("type") is not None:
            raise StreamError("unsupported-stanza-type", "unsolicited dialback verify answer")
        if not receiving or not originating or not stream_id:
            raise StreamError("improper-addressing", "db:verify needs from, to and id")
        if not self._ctx.is_local_domain(originating):
            self._send(dialback.verify_answer(originating, receiving, stream_id, "error", "item-not-found"))
            return
        valid = bool(key) and dialback.key_is_valid(self._ctx.dialback_secret, receiving, originating, stream_id, key)
        self._send(dialback.verify_answer(originating, receiving, stream_id, "valid" if valid else "invalid"))
        self._answered_verify = True

    def close(self, condition: str | None = None, text: str = "") -> list[S2SEvent]:
        if self.sm_enabled and not (self.closing or self.closed):
            # XEP-0198 4: what we handled, last, so that the peer need not send it again (what arrives after
            # this is still routed, or refused after a stream error: see StreamMachine.close).
            self._write(sm.answer_bytes(self.sm_handled))
        return super().close(condition, text)

    def _on_sm(self, el: Element) -> None:
        """XEP-0198 on the receiving side: ``<enable/>`` once, after authentication; ``<r/>`` answered with
        the stanzas handled; ``<a/>`` passed over (this stream carries no stanzas of ours to acknowledge)."""
        if el.tag == sm.ENABLE:
            if self.sm_enabled or not self.authenticated:
                self._write(sm.failed_bytes("unexpected-request"))
                return
            # No 'resume': we offer acknowledgements only, and a resume='true' request is answered the same way.
            self.sm_enabled = True
            self.sm_handled = 0
            self._write(sm.ENABLED_BYTES)
        elif el.tag == f"{{{sm.SM_NS}}}resume":
            self._write(sm.failed_bytes("feature-not-implemented"))  # XEP-0198 5: no resumption here
        elif not self.sm_enabled:
            # <r/>, <a/> (or <enabled/>...) on a stream without Stream Management: not part of this stream.
            raise StreamError("unsupported-stanza-type", f"unexpected element {el.tag}")
        elif el.tag == sm.REQUEST:
            self._write(sm.answer_bytes(self.sm_handled))
        elif el.tag != sm.ANSWER:
            raise StreamError("unsupported-stanza-type", f"unexpected element {el.tag}")

    def _has_authenticated(self) -> bool:
        return bool(self.authenticated)

    def _on_element_while_closing(self, el: Element, events: list[S2SEvent]) -> None:
        # Only stanzas matter now: negotiation and dialback would need an answer, and we send nothing more. A
        # stanza that breaks the rules cannot be reported either (no stream error after our close): it is
        # passed over as it would have ended the stream, and what follows is still read.
        if el.tag in STANZA_TAGS:
            with contextlib.suppress(StreamError):
                self._on_stanza(el, events)

    def _on_stanza(self, el: Element, events: list[S2SEvent]) -> None:
        from_ = self._stanza_sender(el)
        if self.sm_enabled:  # handed out (delivered, bounced or refused by the caller): handled, XEP-0198 4
            self.sm_handled = (self.sm_handled + 1) % sm.H_MODULO
        if self.refusing is not None:
            events.append(StanzaRefused(el, from_, self.refusing))
        else:
            events.append(StanzaReceived(el, from_))

    def _stanza_sender(self, el: Element) -> str:
        """The authenticated domain ``el`` comes from; a StreamError when it may not be accepted."""
        if not self.authenticated:
            raise StreamError("not-authorized", "no domain is authenticated on this stream")
        if not el.get("from") or not el.get("to"):
            raise StreamError("improper-addressing", "a stanza between servers needs 'from' and 'to'")
        from_ = domain_of(el.get("from"))
        if from_ is None:
            # RFC 6120 4.9.3.7: a value that violates the rules for XMPP addresses; nobody to bounce to.
            raise StreamError("improper-addressing", "the stanza's 'from' is not an XMPP address")
        if from_ not in self.authenticated:
            raise StreamError("invalid-from", f"{from_} is not authenticated on this stream")
        to = domain_of(el.get("to"))
        if to is None:
            # A malformed 'to' from an authenticated sender: the router bounces it with jid-malformed, and the
            # stream (which may carry other users' stanzas) stays up.
            return from_
        if not self._ctx.is_local_domain(to):
            raise StreamError("host-unknown", f"this gateway does not serve {to}")
        if (from_, to) not in self._pairs:
            # Authenticated, but for another of our domains: RFC 6120 4.9.3.9 "as negotiated".
            raise StreamError("invalid-from", f"{from_} is not authenticated for {to} on this stream")
        return from_

    def _on_failed_before_auth(self, events: list[S2SEvent]) -> None:
        if self.authenticated or self.settings is None or self.remote_domain is None or self.local_domain is None:
            return
        if self._answered_verify and not self._pending_dialback:
            return  # a dialback verification stream: it never meant to authenticate, so nothing failed
        excluded: list[Exclusion] = []
        no_certificate = self._no_certificate or not self._has_certificate()
        for method in Method:
            excluded += [Exclusion(method, "local", r) for r in exclusions(self.settings, method)]
            if method is Method.SASL_TLS and no_certificate and allows(self.settings, method):
                # No certificate of ours for this domain: no TLS, so no SASL EXTERNAL (nor dialback over TLS,
                # which the detail code says).
                excluded.append(Exclusion(method, "local", Rule.CERTIFICATE_INVALID))
            if (
                method is Method.SASL_TLS
                and self.secure
                and self.settings.sasl is not Sasl.NOT_SUPPORTED
                and not self._offered_external
            ):
                excluded.append(Exclusion(method, "remote", Rule.CERTIFICATE_INVALID))
        detail = "no_local_certificate" if self._no_certificate else "closed_before_authentication"
        events.append(NegotiationFailed(self.local_domain, self.remote_domain, "in", tuple(excluded), detail))
