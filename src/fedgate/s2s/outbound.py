"""The initiating side of a server-to-server stream (we connect to a partner).

Our settings for the partner decide: STARTTLS when offered and TLS is not "not supported" (and never a
stanza in plain text when TLS is required), then SASL EXTERNAL when offered and allowed, else Server
Dialback when allowed on this transport and offered, else a failure naming what ruled out each method.

The same machine, in verification mode, carries a dialback ``<db:verify/>`` to an authoritative server.
"""

from __future__ import annotations

import base64
import contextlib
from collections import deque
from dataclasses import dataclass
from enum import Enum, auto
from xml.etree.ElementTree import Element

from .. import dialback
from ..errors import StreamError
from ..policy import Exclusion, Method, Rule, Settings, Tls, allows, exclusions
from ..xmlstream import StreamOpened as XmlStreamOpened
from . import sm
from .base import (
    FEATURES,
    SASL_NS,
    SERVER_NS,
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
    DialbackVerifyAnswered,
    NegotiationFailed,
    S2SEvent,
    StartTlsNow,
    StreamOpened,
)

# A peer that enabled Stream Management but lets this many stanzas go unacknowledged is treated as one
# without it (the list would grow without bound).
MAX_UNACKED = 50000


@dataclass(frozen=True)
class VerifyRequest:
    """A key to check with ``originating``'s authoritative server, for an inbound stream of ours."""

    originating: str
    receiving: str
    stream_id: str
    key: str


class _State(Enum):
    HEADER = auto()
    FEATURES = auto()
    PROCEED = auto()
    TLS = auto()
    SASL = auto()
    DIALBACK = auto()
    VERIFY = auto()
    READY = auto()
    DONE = auto()


class OutboundStream(StreamMachine):
    direction = "out"

    def __init__(
        self,
        ctx: S2SContext,
        local_domain: str,
        remote_domain: str,
        settings: Settings,
        *,
        verify: VerifyRequest | None = None,
        keep_open: bool = False,
    ) -> None:
        """``verify`` makes this a verification stream for that key. With ``keep_open`` it is a verification
        stream that stays open for more keys (``send_verify``), as servers keep one towards each authoritative
        server instead of connecting back for every dialback request."""
        super().__init__(ctx)
        self.local_domain = local_domain
        self.remote_domain = remote_domain
        self.settings = settings
        self.verify = verify
        self.keep_open = keep_open
        self.verification = verify is not None or keep_open
        self._verify_queue: list[VerifyRequest] = [verify] if verify is not None else []
        # Requests sent, by (originating, receiving, stream id): an answer must match all three (XEP-0220 2.1.2).
        self._verify_pending: dict[tuple[str, str, str], VerifyRequest] = {}
        self.stream_id: str | None = None
        self.method: Method | None = None
        self._state = _State.HEADER
        self._features: Element | None = None
        self._sasl_failed = False
        self._sasl_succeeded = False
        # Why each method was passed over, as we learn it (local settings first, then the peer's offers).
        self._excluded: list[Exclusion] = []
        # The detail code a failure before authentication is reported with.
        self._failure_detail = "stream_closed"
        # The stanza error for what was queued for this stream when it fails (None: the caller's default).
        self.failure_condition: str | None = None
        # Stanzas given to send_stanza whose bytes data_to_send() has not handed out yet.
        self._unsent: list[Element] = []
        # XEP-0198 acknowledgements (no resumption). sm_requested: our <enable/> is out and was not refused
        # (h counts from there, XEP-0198 4); sm_enabled: the peer answered <enabled/>. _unacked: stanzas handed
        # out since <enable/> that no <a h/> has covered yet; _sm_sent and _sm_acked: the counts, mod 2^32.
        self.sm_requested = False
        self.sm_enabled = False
        self._unacked: deque[Element] = deque()
        self._sm_sent = 0
        self._sm_acked = 0
        self._since_request = 0

    @property
    def authenticated(self) -> bool:
        return self._state is _State.READY

    @property
    def verify_ready(self) -> bool:
        """A verification stream that has negotiated what it needs and is carrying ``db:verify``."""
        return self._state is _State.VERIFY

    @property
    def verify_pending(self) -> int:
        return len(self._verify_pending) + len(self._verify_queue)

    def send_verify(self, request: VerifyRequest) -> None:
        """Ask the authoritative server about one more key (verification streams only)."""
        if not self.verification:
            raise RuntimeError("not a verification stream")
        self._verify_queue.append(request)
        if self._state is _State.VERIFY:
            self._flush_verify()

    def _flush_verify(self) -> None:
        for v in self._verify_queue:
            self._verify_pending[(v.originating, v.receiving, v.stream_id)] = v
            self._send(dialback.verify_request(v.receiving, v.originating, v.stream_id, v.key))
        self._verify_queue.clear()

    def start(self) -> None:
        """Open the stream (call once, after the transport connected)."""
        self._open()

    def tls_established(self, info: TlsInfo) -> None:
        self.secure = True
        self.tls = info
        self._restart_stream()
        self._open()

    def establishment_timed_out(self) -> list[S2SEvent]:
        """The caller's establishment deadline passed before authentication: a ``connection-timeout`` stream
        error and ``</stream:stream>``, and (for a stream meant to authenticate) a ``NegotiationFailed`` with
        detail ``establishment_timeout``."""
        self._failure_detail = "establishment_timeout"
        return self.close("connection-timeout", "the stream was not established in time")

    def send_stanza(self, el: Element) -> None:
        if self._state is not _State.READY:
            raise RuntimeError("stream not authenticated")
        if self.closing or self.closed:
            raise RuntimeError("stream closed (RFC 6120 4.4: nothing is sent after our </stream:stream>)")
        self._send(el)
        self._unsent.append(el)
        if self.sm_requested:
            self._since_request += 1
            if self._since_request >= sm.REQUEST_EVERY:
                self.request_ack()

    def request_ack(self) -> None:
        """Ask for an acknowledgement (``<r/>``) of what was sent since the last request, if anything was; the
        caller also calls this when the link goes quiet, so the last stanzas of a burst are covered too."""
        if self.sm_requested and self._since_request and not (self.closing or self.closed):
            self._write(sm.REQUEST_BYTES)
            self._since_request = 0

    @property
    def unacknowledged(self) -> tuple[Element, ...]:
        """Stanzas written to the peer that Stream Management has not seen acknowledged (oldest first)."""
        return tuple(self._unacked)

    @property
    def to_resend(self) -> tuple[Element, ...]:
        """What :meth:`withdraw_unsent` hands back of :attr:`unacknowledged`: all of it when the stream just
        went away (a reset, a transport that ended, our close unanswered), since the peer may not have handled
        them; none when it ended as a stream, with the peer's ``</stream:stream>`` or stream error, or with our
        stream error. Then, RFC 6120 4.4 and 4.9.1.1, the peer processed what it got before the end (a
        receiving fedgate delivers it, or returns it to its sender when it came after its own stream error),
        and sending it again would deliver it twice, or deliver what was bounced."""
        return () if self.peer_ended_stream or self.refusing is not None else tuple(self._unacked)

    def data_to_send(self) -> bytes:
        if self.sm_requested:
            self._unacked.extend(self._unsent)
            self._sm_sent = (self._sm_sent + len(self._unsent)) % sm.H_MODULO
            if len(self._unacked) > MAX_UNACKED:
                self._sm_off()
        self._unsent.clear()
        return super().data_to_send()

    def withdraw_unsent(self) -> list[Element]:
        """Take back the stanzas whose bytes ``data_to_send()`` has not handed out yet (and drop everything
        still buffered): the transport they were meant for is gone, so they were never written. With Stream
        Management the stanzas written but never acknowledged come first (oldest first): the peer may not
        have handled them. Not after the stream ended as a stream: it has had all it carried processed (RFC 6120
        4.4), acknowledged or not: see :attr:`to_resend`."""
        unacked = list(self.to_resend)
        self._unacked.clear()
        unsent, self._unsent = self._unsent, []
        self._out.clear()
        return unacked + unsent

    def close(self, condition: str | None = None, text: str = "") -> list[S2SEvent]:
        if not condition:
            self.request_ack()  # (what the peer answers before its </stream:stream> is still read)
        return super().close(condition, text)

    def _sm_off(self) -> None:
        """Stream Management refused, or the peer's acknowledgements make no sense: the stream goes on
        without it (what was written is left to the transport, as without XEP-0198)."""
        self.sm_requested = self.sm_enabled = False
        self._unacked.clear()

    def _on_sm(self, el: Element) -> None:
        """XEP-0198 elements on an authenticated stream. Anything that does not fit what we asked for turns
        Stream Management off rather than failing the stream, except an ``h`` above what was sent (XEP-0198
        5: a stream error)."""
        if not self.sm_requested:
            return  # never asked for, or turned off: passed over
        if el.tag == sm.ENABLED:
            self.sm_enabled = True
        elif el.tag == sm.FAILED:
            if not self.sm_enabled:
                self._sm_off()
        elif el.tag == sm.REQUEST:
            self._write(sm.answer_bytes(0))  # this stream carries no stanzas to us: none handled
        elif el.tag == sm.ANSWER:
            self._on_ack(el)

    def _on_ack(self, el: Element) -> None:
        h = sm.parse_h(el)
        if h is None:
            self._sm_off()
            return
        count = (h - self._sm_acked) % sm.H_MODULO
        if count > len(self._unacked):
            raise StreamError(
                "undefined-condition",
                f"handled-count-too-high: h={h}, sent {self._sm_sent}",
                app=sm.too_high(h, self._sm_sent),
            )
        for _ in range(count):
            self._unacked.popleft()
        self._sm_acked = h

    def _on_element_while_closing(self, el: Element, events: list[S2SEvent]) -> None:
        # Acknowledgements the peer sent before its </stream:stream> still count.
        if el.tag == sm.ANSWER and self.sm_requested:
            with contextlib.suppress(StreamError):
                self._on_ack(el)

    # -- protocol ------------------------------------------------------------------------------------------
    def _open(self) -> None:
        self._state = _State.HEADER
        self._write_header(
            to=self.remote_domain,
            from_=self.local_domain,
            stream_id=None,
            dialback=self.settings.dialback or self.verification,
        )

    def _on_header(self, ev: XmlStreamOpened, events: list[S2SEvent]) -> None:
        if self._state is not _State.HEADER:
            raise StreamError("invalid-xml", "unexpected stream header")
        if ev.default_ns != SERVER_NS:
            raise StreamError("invalid-namespace", f"default namespace must be {SERVER_NS}")
        check_version(ev.attrs.get("version"))
        from_ = domain_of(ev.attrs.get("from"))
        if from_ is not None and from_ != self.remote_domain:
            raise StreamError("invalid-from", f"expected {self.remote_domain}, got {from_}")
        self.stream_id = ev.attrs.get("id")
        if not self.stream_id:
            raise StreamError("invalid-xml", "the stream header carries no id")
        self._state = _State.FEATURES
        events.append(StreamOpened(self.stream_id, from_, domain_of(ev.attrs.get("to"))))

    def _on_element(self, el: Element, events: list[S2SEvent]) -> None:
        state = self._state
        if state is _State.FEATURES and el.tag == FEATURES:
            self._features = el
            self._on_features(el, events)
        elif state is _State.PROCEED and el.tag == f"{{{TLS_NS}}}proceed":
            self._state = _State.TLS
            events.append(StartTlsNow())
        elif state is _State.PROCEED and el.tag == f"{{{TLS_NS}}}failure":
            self._negotiation_failed(events, "starttls_refused")
        elif state is _State.SASL and el.tag == f"{{{SASL_NS}}}success":
            self.method = Method.SASL_TLS
            self._restart_stream()
            self._open()
            self._sasl_succeeded = True
        elif state is _State.SASL and el.tag == f"{{{SASL_NS}}}failure":
            self._sasl_failed = True
            self._excluded.append(Exclusion(Method.SASL_TLS, "remote", Rule.CERTIFICATE_INVALID))
            assert self._features is not None
            self._choose_authentication(self._features, events)
        elif state is _State.DIALBACK and el.tag == dialback.RESULT:
            self._on_dialback_result(el, events)
        elif state is _State.VERIFY and el.tag == dialback.VERIFY:
            self._on_verify_answer(el, events)
        elif state is _State.READY and el.tag in (dialback.RESULT, dialback.VERIFY):
            # Late dialback chatter on an authenticated stream is harmless; ignore it.
            return
        elif state is _State.READY and el.tag in sm.SM_TAGS:
            self._on_sm(el)
        else:
            raise StreamError("unsupported-stanza-type", f"unexpected {el.tag} on an outgoing stream")

    def _on_features(self, features: Element, events: list[S2SEvent]) -> None:
        if self._sasl_succeeded:
            # The restarted stream after SASL: authentication is complete.
            self._ready(Method.SASL_TLS, events)
            return
        starttls = features.find(f"{{{TLS_NS}}}starttls")
        if not self.secure:
            if starttls is not None and self.settings.tls is not Tls.NOT_SUPPORTED:
                self._write(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                self._state = _State.PROCEED
                return
            if starttls is None:
                # The peer offers no TLS: it rules out both TLS methods (or an attacker stripped the offer).
                self._excluded += [
                    Exclusion(m, "remote", Rule.TLS_NOT_SUPPORTED) for m in (Method.SASL_TLS, Method.TLS_DIALBACK)
                ]
                if self.settings.tls is Tls.REQUIRED:
                    self._negotiation_failed(events, "starttls_not_offered")
                    return
            elif starttls.find(f"{{{TLS_NS}}}required") is not None:
                # We do not do TLS with this partner, and the peer insists on it.
                self._excluded.append(Exclusion(Method.TCP_DIALBACK, "remote", Rule.TLS_REQUIRED))
                self._negotiation_failed(events, "starttls_required_by_peer")
                return
        if self.verification:
            self._state = _State.VERIFY
            self._flush_verify()
            return
        self._choose_authentication(features, events)

    def _choose_authentication(self, features: Element, events: list[S2SEvent]) -> None:
        # Methods our settings rule out need no note here: _why() adds our settings' rules.
        if self.secure and not self._sasl_failed and allows(self.settings, Method.SASL_TLS):
            if not self._ctx.has_certificate(self.local_domain):
                self._excluded.append(Exclusion(Method.SASL_TLS, "local", Rule.CERTIFICATE_INVALID))
            elif "EXTERNAL" in _mechanisms(features):
                # XEP-0178: the authorization identity is our domain (base64), which Prosody and ejabberd accept.
                auth = sasl_element("auth", base64.b64encode(self.local_domain.encode()).decode())
                auth.set("mechanism", "EXTERNAL")
                self._send(auth)
                self._state = _State.SASL
                return
            else:
                self._excluded.append(Exclusion(Method.SASL_TLS, "remote", Rule.NOT_OFFERED))
        method = Method.TLS_DIALBACK if self.secure else Method.TCP_DIALBACK
        if allows(self.settings, method):
            if features.find(f"{{{dialback.DIALBACK_FEATURE_NS}}}dialback") is None:
                self._excluded.append(Exclusion(method, "remote", Rule.NOT_OFFERED))
            else:
                assert self.stream_id is not None
                secret = self._ctx.dialback_secret
                key = dialback.dialback_key(secret, self.remote_domain, self.local_domain, self.stream_id)
                self._send(dialback.result_request(self.local_domain, self.remote_domain, key))
                self._state = _State.DIALBACK
                return
        self._negotiation_failed(events, "no_method_offered")

    def _on_dialback_result(self, el: Element, events: list[S2SEvent]) -> None:
        # The verdict must be for the one pair we asked about (XEP-0220 2.1.3: from the receiving domain, to the
        # originating one); a "valid" for another pair must not authenticate this stream.
        if domain_of(el.get("from")) != self.remote_domain or domain_of(el.get("to")) != self.local_domain:
            raise StreamError("improper-addressing", "db:result answer for another domain pair")
        kind = el.get("type")
        method = Method.TLS_DIALBACK if self.secure else Method.TCP_DIALBACK
        if kind == "valid":
            self._ready(method, events)
            return
        self._state = _State.DONE
        if kind == "invalid":
            # XEP-0220 2.1.1: the key was deemed bogus; queued stanzas go back with internal-server-error. The
            # receiving server closes the stream; so do we.
            self.failure_condition = "internal-server-error"
            detail, peer_error = "dialback_invalid", None
        else:
            # XEP-0220 2.4: a dialback error is not fatal to the stream, the domain pair is simply not
            # authenticated, and queued stanzas go back with remote-server-timeout.
            self.failure_condition = "remote-server-timeout"
            peer_error = dialback.error_condition(el) or "undefined-condition"
            detail = f"dialback_error_{peer_error}" if kind == "error" else "dialback_unknown"
        events.append(
            NegotiationFailed(self.local_domain, self.remote_domain, "out", self._why(), detail, peer_error)
        )
        # Nothing else is authenticated or pending on this stream (one domain pair per outgoing stream): it
        # ends politely, with no stream error, since the peer did nothing wrong.
        events += self.close()

    def _on_verify_answer(self, el: Element, events: list[S2SEvent]) -> None:
        key = (domain_of(el.get("from")) or "", domain_of(el.get("to")) or "", el.get("id") or "")
        v = self._verify_pending.pop(key, None)
        if v is None:
            raise StreamError("invalid-xml", "db:verify answer does not match a request (from, to and id)")
        kind = el.get("type")
        error = None
        if kind not in ("valid", "invalid"):
            error = dialback.error_condition(el) or "undefined-condition"
        events.append(DialbackVerifyAnswered(v.originating, v.receiving, v.stream_id, kind == "valid", error))
        if not self.keep_open and not self.verify_pending:
            self._state = _State.DONE
            events += self.close()

    def _has_authenticated(self) -> bool:
        # (What the peer may still send after our close is negotiation chatter: read and passed over.)
        return self._state is _State.READY

    def _ready(self, method: Method, events: list[S2SEvent]) -> None:
        self.method = method
        self._state = _State.READY
        if sm.has_feature(self._features) and not self.verification:
            # XEP-0198 3: enabled once authenticated, when the receiving server offered it (after SASL, on the
            # restarted stream's features; for dialback, on the features before it). Acknowledgements only.
            self._write(sm.ENABLE_BYTES)
            self.sm_requested = True
        events.append(Authenticated(self.local_domain, self.remote_domain, method, "out"))

    def _why(self) -> tuple[Exclusion, ...]:
        """Every reason each method was passed over: our settings' rules, then what the peer's offers ruled
        out, in preference order."""
        local = [Exclusion(m, "local", r) for m in Method for r in exclusions(self.settings, m)]
        merged = dict.fromkeys(local + self._excluded)
        order = list(Method)
        return tuple(sorted(merged, key=lambda e: order.index(e.method)))

    def _negotiation_failed(self, events: list[S2SEvent], detail: str) -> None:
        events.append(NegotiationFailed(self.local_domain, self.remote_domain, "out", self._why(), detail))
        self._state = _State.DONE
        # We are the initiator: nothing was accepted, so close with a policy-violation that names the reason.
        events += self.close("policy-violation", detail.replace("_", " "))

    def _on_failed_before_auth(self, events: list[S2SEvent]) -> None:
        if self._state not in (_State.READY, _State.DONE) and not self.verification:
            if self._state is _State.DIALBACK and self._failure_detail == "stream_closed":
                # XEP-0220 2.1.1: closed while we waited for the dialback result: as for a dialback error.
                self.failure_condition = "remote-server-timeout"
            self._state = _State.DONE
            events.append(
                NegotiationFailed(self.local_domain, self.remote_domain, "out", self._why(), self._failure_detail)
            )


def _mechanisms(features: Element) -> set[str]:
    mechs = features.find(f"{{{SASL_NS}}}mechanisms")
    if mechs is None:
        return set()
    return {(m.text or "").strip().upper() for m in mechs if m.tag == f"{{{SASL_NS}}}mechanism"}
