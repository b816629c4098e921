"""XEP-0198 Stream Management (acknowledgements, no resumption) in the sans-IO S2S machines: the feature, enable
and enabled, counting, <r/> and <a/>, h modulo 2^32, a too-high h, enable before authentication, split input,
and what the initiating side hands back when the stream ends."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest

from fedgate.policy import Method, Settings
from fedgate.s2s import InboundStream, OutboundStream, StanzaReceived, StreamClosed
from fedgate.s2s.sm import SM_NS

from .test_s2s_machine import HEADER_A, PAIRS, ctx, feed, kinds, negotiate

SM_FEATURE = b"<sm xmlns='urn:xmpp:sm:3'/>"
R = b"<r xmlns='urn:xmpp:sm:3'/>"


def a(h: int) -> bytes:
    return f"<a xmlns='{SM_NS}' h='{h}'/>".encode()


def message(i: int) -> Element:
    return Element("{jabber:server}message", {"from": "x@a.test", "to": "y@b.test", "id": f"m{i}"})


def pump(out: OutboundStream, inbound: InboundStream) -> None:
    """Move bytes both ways until both machines are quiet."""
    for _ in range(100):
        data, back = out.data_to_send(), b""
        if data:
            inbound.receive_data(data)
            back = inbound.data_to_send()
            out.receive_data(back)
        if not data and not back:
            return
    raise AssertionError("the machines kept talking")


def pair(method: Method = Method.SASL_TLS) -> tuple[OutboundStream, InboundStream]:
    client, server = negotiate(Settings.parse_triple(PAIRS[method][0]), Settings.parse_triple(PAIRS[method][1]))
    assert isinstance(client.machine, OutboundStream) and isinstance(server.machine, InboundStream)
    return client.machine, server.machine


@pytest.mark.parametrize("method", list(PAIRS), ids=[m.value for m in PAIRS])
def test_offered_where_authentication_follows_and_enabled_once_authenticated(method: Method) -> None:
    client, server = negotiate(Settings.parse_triple(PAIRS[method][0]), Settings.parse_triple(PAIRS[method][1]))
    assert isinstance(client.machine, OutboundStream) and isinstance(server.machine, InboundStream)
    assert client.machine.sm_enabled and server.machine.sm_enabled
    offers = bytes(server.output).split(b"<stream:features>")[1:]
    # Never next to STARTTLS <required/> (nothing can be authenticated on that stream); on the last features.
    assert SM_FEATURE in offers[-1] and not any(SM_FEATURE in f and b"<required/>" in f for f in offers)
    sent = bytes(client.output)
    enable = sent.index(b"<enable xmlns='urn:xmpp:sm:3'/>")
    auth = sent.rindex(b"<db:result") if method is not Method.SASL_TLS else sent.rindex(b"<auth")
    assert auth < enable < sent.index(b"<message"), "enabled only after authentication"
    assert b"<enabled xmlns='urn:xmpp:sm:3'/>" in bytes(server.output) and b"resume" not in bytes(server.output)
    assert server.machine.sm_handled == 1  # the one stanza negotiate() sent after <enable/>


def test_stanzas_are_counted_requested_and_acknowledged() -> None:
    out, inbound = pair()
    pump(out, inbound)
    for i in range(20):
        out.send_stanza(message(i))
    data = out.data_to_send()
    assert data.count(R) == 2  # one request every 8 stanzas (counting negotiate()'s, after <enable/>)
    assert len(out.unacknowledged) == 21  # (with the one negotiate() sent, never acknowledged yet)
    events = inbound.receive_data(data)
    assert kinds(events) == ["StanzaReceived"] * 20  # <r/> is not a stanza: neither counted nor handed out
    assert inbound.sm_handled == 21 and inbound.data_to_send() == a(8) + a(16)
    out.receive_data(a(8) + a(16))
    assert [el.get("id") for el in out.unacknowledged] == [f"m{i}" for i in range(15, 20)]
    out.request_ack()  # the link went quiet
    out.request_ack()  # (nothing sent since: no second request)
    assert out.data_to_send() == R
    out.receive_data(a(21))
    assert out.unacknowledged == ()


def test_input_split_anywhere_counts_the_same() -> None:
    out, inbound = pair()
    for i in range(3):
        out.send_stanza(message(i))
    out.request_ack()
    data = out.data_to_send()
    events = []
    for i in range(len(data)):
        events += inbound.receive_data(data[i:i + 1])
    assert kinds(events) == ["StanzaReceived"] * 3 and inbound.data_to_send() == a(4)
    answer = a(4)
    for i in range(len(answer)):
        out.receive_data(answer[i:i + 1])
    assert out.unacknowledged == ()


def test_h_wraps_around_at_2_32() -> None:
    out, inbound = pair()
    pump(out, inbound)
    out.request_ack()
    pump(out, inbound)
    assert out.unacknowledged == ()
    out._sm_acked = out._sm_sent = 2**32 - 2
    inbound.sm_handled = 2**32 - 2
    for i in range(5):
        out.send_stanza(message(i))
    out.request_ack()
    data = out.data_to_send()
    inbound.receive_data(data)
    assert inbound.sm_handled == 3 and inbound.data_to_send() == a(3)
    out.receive_data(a(3))
    assert out.unacknowledged == () and not out.closed


@pytest.mark.parametrize("h", [4, 2**32 - 1])
def test_an_h_above_what_was_sent_is_a_stream_error(h: int) -> None:
    out, inbound = pair()
    pump(out, inbound)
    out.receive_data(a(1))
    out.send_stanza(message(0))
    out.send_stanza(message(1))
    out.data_to_send()
    events = out.receive_data(a(h))  # 3 sent in all: h=4 is one too many, 2^32-1 went back
    assert isinstance(events[-1], StreamClosed) and events[-1].condition == "undefined-condition"
    sent = out.data_to_send()
    assert b"<undefined-condition" in sent and f"<handled-count-too-high xmlns='{SM_NS}' h='{h}'".encode() in sent
    assert [el.get("id") for el in out.withdraw_unsent()] == ["m0", "m1"]  # not acknowledged: handed back


@pytest.mark.parametrize("answer", [b"<a xmlns='urn:xmpp:sm:3'/>", b"<a xmlns='urn:xmpp:sm:3' h='-1'/>",
                                    b"<a xmlns='urn:xmpp:sm:3' h='4294967296'/>", b"<a xmlns='urn:xmpp:sm:3' h='x'/>"])
def test_a_malformed_h_turns_stream_management_off_not_the_stream(answer: bytes) -> None:
    out, inbound = pair()
    pump(out, inbound)
    assert out.unacknowledged
    assert out.receive_data(answer) == []
    assert not out.sm_requested and out.unacknowledged == () and not out.closed
    out.send_stanza(message(0))
    assert R not in out.data_to_send() and out.unacknowledged == ()


def _inbound_offering_dialback() -> InboundStream:
    s = Settings.parse_triple("optional/optional/true")
    inbound = InboundStream(ctx("b.test", {"a.test": s}, "b"))
    feed(inbound, HEADER_A)
    sent = inbound.data_to_send()
    assert SM_FEATURE in sent and b"<dialback" in sent
    return inbound


def test_enable_before_authentication_fails_and_the_stream_goes_on() -> None:
    inbound = _inbound_offering_dialback()
    assert feed(inbound, b"<enable xmlns='urn:xmpp:sm:3'/>") == []
    assert inbound.data_to_send() == (b"<failed xmlns='urn:xmpp:sm:3'>"
                                      b"<unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>")
    assert not inbound.sm_enabled and not inbound.closed


def test_enable_twice_fails_the_second_time_and_counts_from_the_first() -> None:
    out, inbound = pair()
    pump(out, inbound)
    assert inbound.sm_handled == 1
    feed(inbound, b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    assert b"<failed" in inbound.data_to_send() and inbound.sm_handled == 1 and inbound.sm_enabled


@pytest.mark.parametrize("element", [R, b"<a xmlns='urn:xmpp:sm:3' h='0'/>"])
def test_r_and_a_without_stream_management_are_unsupported(element: bytes) -> None:
    inbound = _inbound_offering_dialback()
    events = feed(inbound, element)
    assert isinstance(events[-1], StreamClosed) and events[-1].condition == "unsupported-stanza-type"


def test_resume_is_not_offered() -> None:
    out, inbound = pair()
    pump(out, inbound)
    feed(inbound, b"<resume xmlns='urn:xmpp:sm:3' h='0' previd='x'/>")
    assert b"<feature-not-implemented" in inbound.data_to_send() and not inbound.closed


def test_not_enabled_when_not_offered_and_off_when_refused() -> None:
    s = Settings.parse_triple("not_supported/not_supported/true")
    out = OutboundStream(ctx("a.test", {"b.test": s}), "a.test", "b.test", s)
    out._ready(Method.TCP_DIALBACK, [])  # (no features seen: nothing offered)
    assert not out.sm_requested
    out, _ = pair()
    out.sm_enabled = False  # as if <enabled/> had not arrived yet
    out.receive_data(b"<failed xmlns='urn:xmpp:sm:3'/>")
    assert not out.sm_requested and out.unacknowledged == ()
    out.send_stanza(message(0))
    assert R not in out.data_to_send() and out.withdraw_unsent() == []


def test_the_initiator_answers_a_request_with_nothing_handled() -> None:
    out, inbound = pair()
    pump(out, inbound)
    out.receive_data(R)
    assert out.data_to_send() == a(0) and not out.closed


def test_unacknowledged_come_back_first_unless_the_peer_closed_in_order() -> None:
    out, inbound = pair()
    pump(out, inbound)
    out.receive_data(a(1))
    for i in range(3):
        out.send_stanza(message(i))
    out.data_to_send()  # handed to the transport, not acknowledged
    out.send_stanza(message(3))  # not handed out yet
    assert [el.get("id") for el in out.unacknowledged] == ["m0", "m1", "m2"]
    out.connection_lost()
    assert [el.get("id") for el in out.withdraw_unsent()] == ["m0", "m1", "m2", "m3"]

    out, inbound = pair()
    pump(out, inbound)
    out.send_stanza(message(0))
    out.data_to_send()
    out.receive_data(b"</stream:stream>")  # RFC 6120 4.4: the peer processed what it got before closing
    assert out.peer_ended_stream and out.withdraw_unsent() == []


@pytest.mark.parametrize("end", ["peer-error", "our-error"])
def test_unacknowledged_are_not_resent_after_a_stream_error(end: str) -> None:
    """RFC 6120 4.9.1.1: the side that sends the stream error processed what came before it (a fedgate
    inbound stream then refuses, and bounces, what comes after): resending would duplicate or undo that."""
    out, inbound = pair()
    pump(out, inbound)
    out.send_stanza(message(0))
    out.data_to_send()
    if end == "peer-error":
        out.receive_data(b"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                         b"</stream:error>")
    else:
        out.close("policy-violation")
    assert len(out.unacknowledged) == 2 and out.to_resend == () and out.withdraw_unsent() == []


def test_the_receiving_side_acknowledges_before_its_close() -> None:
    out, inbound = pair()
    pump(out, inbound)
    inbound.close("policy-violation")
    assert inbound.data_to_send().startswith(a(1) + b"<stream:error>")


def test_our_close_requests_an_ack_and_takes_the_answer_while_closing() -> None:
    out, inbound = pair()
    pump(out, inbound)
    out.send_stanza(message(0))
    out.close()
    assert out.data_to_send().endswith(R + b"</stream:stream>") and out.closing
    out.receive_data(a(2) + b"</stream:stream>")
    assert out.closed and out.unacknowledged == ()


def test_counting_covers_what_the_router_bounces() -> None:
    """A stanza with a malformed 'to' is handed out (the router bounces it): handled, so counted."""
    out, inbound = pair()
    pump(out, inbound)
    events = feed(inbound, b"<message from='x@a.test' to='@b.test'/>", R)
    assert [type(e) for e in events] == [StanzaReceived] and inbound.data_to_send() == a(2)
