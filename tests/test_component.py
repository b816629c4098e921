"""XEP-0114 component stream machine: unit tests per condition, and a real slixmpp component over loopback."""

from __future__ import annotations

import asyncio
from xml.etree.ElementTree import Element, SubElement

import pytest

from fedgate.component import (
    COMPONENT_NS,
    ComponentAuthenticated,
    ComponentClosed,
    ComponentEvent,
    ComponentStream,
    StanzaReceived,
    handshake_digest,
)
from fedgate.xmlstream import STREAM_CLOSE, ElementReceived, StreamOpened, XmlEvent, XmlStreamParser

DOMAIN = "comp.example"
SECRET = "s3cret"
SID = "abc123"
HEADER = (
    b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='comp.example'>"
)
HANDSHAKE = f"<handshake>{handshake_digest(SID, SECRET)}</handshake>".encode()
MESSAGE = b"<message from='bot@comp.example/r' to='user@remote.example' type='chat'><body>hi &amp; bye</body></message>"


def machine() -> ComponentStream:
    return ComponentStream({DOMAIN: SECRET}, stream_id_factory=lambda: SID)


def wire(data: bytes) -> list[XmlEvent]:
    """What the component would parse out of our bytes."""
    return XmlStreamParser().feed(data)


def authenticated() -> ComponentStream:
    m = machine()
    assert m.receive_data(HEADER + HANDSHAKE) == [ComponentAuthenticated(DOMAIN)]
    m.data_to_send()
    return m


def closed_with(m: ComponentStream, data: bytes, condition: str) -> bytes:
    events = m.receive_data(data)
    assert isinstance(events[-1], ComponentClosed)
    assert events[-1].condition == condition
    assert m.closed
    out = m.data_to_send()
    assert f"<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>".encode() in out
    assert out.endswith(STREAM_CLOSE)
    assert m.receive_data(MESSAGE) == []
    return out


def test_handshake_and_stanzas_both_ways() -> None:
    m = machine()
    assert m.receive_data(HEADER) == []
    header = m.data_to_send()
    [opened] = wire(header)
    assert isinstance(opened, StreamOpened)
    assert opened.default_ns == COMPONENT_NS
    assert opened.attrs == {"from": DOMAIN, "id": SID}
    assert m.receive_data(HANDSHAKE) == [ComponentAuthenticated(DOMAIN)]
    assert m.authenticated
    assert m.data_to_send() == b"<handshake/>"

    [event] = m.receive_data(MESSAGE)
    assert isinstance(event, StanzaReceived)
    el = event.element
    assert el.tag == "{jabber:server}message"
    assert el[0].tag == "{jabber:server}body"
    assert el[0].text == "hi & bye"

    reply = Element("{jabber:server}message", {"from": "user@remote.example", "to": "bot@comp.example"})
    SubElement(reply, "{jabber:server}body").text = "<b>"
    SubElement(reply, "{urn:x}x")
    assert m.send_stanza(reply)
    parsed = wire(header + m.data_to_send())[1]
    assert isinstance(parsed, ElementReceived)
    assert parsed.element.tag == "{jabber:component:accept}message"
    assert parsed.element[0].text == "<b>"
    assert parsed.element[1].tag == "{urn:x}x"


def test_component_closes_cleanly() -> None:
    m = authenticated()
    assert m.receive_data(b"  " + STREAM_CLOSE) == [ComponentClosed(None)]
    assert m.data_to_send() == STREAM_CLOSE
    assert m.closed
    assert not m.send_stanza(Element("{jabber:server}message"))


def test_byte_by_byte() -> None:
    data = HEADER + b"\n" + HANDSHAKE + b" " + MESSAGE + STREAM_CLOSE
    whole = machine().receive_data(data)
    m = machine()
    events: list[ComponentEvent] = []
    for i in range(len(data)):
        events += m.receive_data(data[i : i + 1])
    assert [type(e) for e in events] == [type(e) for e in whole]
    assert [ComponentAuthenticated, StanzaReceived, ComponentClosed] == [type(e) for e in events]


def test_callable_secrets_and_idna() -> None:
    m = ComponentStream(lambda d: SECRET if d == "xn--bcher-kva.example" else None, stream_id_factory=lambda: SID)
    header = HEADER.replace(b"comp.example", "Bücher.example".encode())
    events = m.receive_data(header + HANDSHAKE)
    assert events == [ComponentAuthenticated("xn--bcher-kva.example")]


def test_default_stream_ids_are_fresh() -> None:
    ids = set()
    for _ in range(3):
        m = ComponentStream({DOMAIN: SECRET})
        m.receive_data(HEADER)
        ids.add(m.stream_id)
    assert len(ids) == 3


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        (HEADER.replace(b"comp.example", b"other.example"), "host-unknown"),
        (HEADER.replace(b"comp.example", b"bad domain"), "host-unknown"),
        (HEADER.replace(b" to='comp.example'", b""), "improper-addressing"),
        (HEADER.replace(b"jabber:component:accept", b"jabber:client"), "invalid-namespace"),
        (HEADER.replace(b"xmlns='jabber:component:accept' ", b""), "invalid-namespace"),
        (b"<stream:stream xmlns:stream='urn:nope'>", "invalid-namespace"),
        (b"<<<", "not-well-formed"),
        (HEADER + MESSAGE, "not-authorized"),
        (HEADER + b"<handshake>0000</handshake>", "not-authorized"),
        (HEADER + b"<handshake/>", "not-authorized"),
        (HEADER + HANDSHAKE.replace(b"<handshake>", b"<handshake xmlns='urn:x'>"), "not-authorized"),
    ],
)
def test_errors_before_authentication(data: bytes, condition: str) -> None:
    out = closed_with(machine(), data, condition)
    opened = wire(out)[0]  # our header always goes out before the error
    assert isinstance(opened, StreamOpened)


def test_wrong_secret() -> None:
    m = ComponentStream({DOMAIN: "other"}, stream_id_factory=lambda: SID)
    closed_with(m, HEADER + HANDSHAKE, "not-authorized")


def test_uppercase_hex_handshake_accepted() -> None:
    m = machine()
    assert m.receive_data(HEADER + HANDSHAKE.upper().replace(b"HANDSHAKE", b"handshake")) == [
        ComponentAuthenticated(DOMAIN)
    ]


@pytest.mark.parametrize(
    ("stanza", "condition"),
    [
        (MESSAGE.replace(b"bot@comp.example/r", b"bot@other.example"), "invalid-from"),
        (MESSAGE.replace(b"bot@comp.example/r", b"bot@sub.comp.example"), "invalid-from"),
        (MESSAGE.replace(b"bot@comp.example/r", b"bot@"), "invalid-from"),
        (MESSAGE.replace(b"from='bot@comp.example/r' ", b""), "improper-addressing"),
        (MESSAGE.replace(b"to='user@remote.example' ", b""), "improper-addressing"),
        (b"<handshake>x</handshake>", "unsupported-stanza-type"),
        (b"<message xmlns='jabber:client' from='comp.example' to='a@b'/>", "unsupported-stanza-type"),
        (b"<message><body>", "policy-violation"),
    ],
)
def test_errors_after_authentication(stanza: bytes, condition: str) -> None:
    m = authenticated()
    if condition == "policy-violation":
        m = ComponentStream({DOMAIN: SECRET}, stream_id_factory=lambda: SID, max_stanza_size=100)
        m.receive_data(HEADER + HANDSHAKE)
        stanza += b"x" * 200
    closed_with(m, stanza, condition)


def test_from_may_be_the_bare_domain_in_any_case() -> None:
    m = authenticated()
    [event] = m.receive_data(MESSAGE.replace(b"bot@comp.example/r", b"COMP.Example"))
    assert isinstance(event, StanzaReceived)


def test_local_close() -> None:
    m = authenticated()
    m.close("system-shutdown", "bye")
    out = m.data_to_send()
    assert out == (
        b"<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>bye</text></stream:error></stream:stream>"
    )
    m.close()
    assert m.data_to_send() == b""
    m2 = authenticated()
    m2.close()
    assert m2.data_to_send() == STREAM_CLOSE


def test_after_our_close_the_components_stanzas_still_count_until_its_close() -> None:
    """RFC 6120 4.4: after our </stream:stream> the component may still be sending; those stanzas are received
    (to be routed), nothing more goes to it, and its own close ends the stream."""
    m = authenticated()
    m.close()
    assert m.closing and not m.closed and m.data_to_send() == STREAM_CLOSE
    assert not m.send_stanza(Element("{jabber:server}message", {"to": "bot@comp.example", "from": "a@b"}))
    m.close("system-shutdown")  # (nothing more is written after our close)
    events = m.receive_data(MESSAGE + b"<message from='bot@other.example' to='u@r.example'/>" + MESSAGE)
    assert [type(e) for e in events] == [StanzaReceived, StanzaReceived]  # (the bad 'from' is passed over)
    assert m.data_to_send() == b""
    assert m.receive_data(STREAM_CLOSE) == [ComponentClosed(None)]
    assert m.closed and not m.closing and m.data_to_send() == b""
    assert m.receive_data(MESSAGE) == []


def test_malformed_input_after_our_close_ends_it_silently() -> None:
    m = authenticated()
    m.close()
    m.data_to_send()
    [event] = m.receive_data(b"<message from='bot@comp.example' to='x@y'><<")
    assert isinstance(event, ComponentClosed) and m.closed and m.data_to_send() == b""


def test_local_close_before_header_opens_stream_first() -> None:
    m = machine()
    m.close("system-shutdown")
    events = wire(m.data_to_send())
    assert isinstance(events[0], StreamOpened)
    assert isinstance(events[1], ElementReceived)


def test_send_before_authentication_is_dropped() -> None:
    m = machine()
    m.receive_data(HEADER)
    m.data_to_send()
    assert not m.send_stanza(Element("{jabber:server}message", {"to": "a@comp.example"}))
    assert m.data_to_send() == b""


# -- a real slixmpp component against the machine over loopback ---------------------------------------------


def test_slixmpp_component_interop() -> None:
    import slixmpp

    async def main() -> None:
        events: asyncio.Queue[ComponentEvent] = asyncio.Queue()
        connections: list[tuple[ComponentStream, asyncio.StreamWriter]] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            m = ComponentStream({"comp.localhost": "sekrit"})
            connections.append((m, writer))
            while not m.closed and (data := await reader.read(65536)):
                for event in m.receive_data(data):
                    events.put_nowait(event)
                writer.write(m.data_to_send())
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        comp = slixmpp.ComponentXMPP("comp.localhost", "sekrit", "127.0.0.1", server.sockets[0].getsockname()[1])
        heard: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_message(msg: slixmpp.Message) -> None:
            heard.set_result(str(msg["body"]))
            msg.reply(f"echo: {msg['body']}").send()

        comp.add_event_handler("message", on_message)
        comp.connect()
        try:
            assert await asyncio.wait_for(events.get(), 10) == ComponentAuthenticated("comp.localhost")
            [(m, writer)] = connections
            stanza = Element("{jabber:server}message", {"from": "user@remote.example", "to": "bot@comp.localhost"})
            SubElement(stanza, "{jabber:server}body").text = "ping & <pong>"
            assert m.send_stanza(stanza)
            writer.write(m.data_to_send())
            assert await asyncio.wait_for(heard, 10) == "ping & <pong>"
            reply = await asyncio.wait_for(events.get(), 10)
            assert isinstance(reply, StanzaReceived)
            assert reply.element.tag == "{jabber:server}message"
            assert reply.element.get("from") == "bot@comp.localhost"
            assert reply.element.get("to") == "user@remote.example"
            assert reply.element.findtext("{jabber:server}body") == "echo: ping & <pong>"
            comp.disconnect()
            assert await asyncio.wait_for(events.get(), 10) == ComponentClosed(None)
        finally:
            comp.abort()
            server.close()
            await server.wait_closed()

    asyncio.run(main())
