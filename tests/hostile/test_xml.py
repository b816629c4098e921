"""Hostile XML at the gateway's S2S port: each case names the bytes, when they come (instead of the stream
header, or after it) and the stream error the gateway must answer with before it closes. Around every test the
``lab`` fixture checks that the legitimate partner l.test keeps exchanging messages on its unchanged streams."""

from __future__ import annotations

import asyncio
import time

import pytest

from ..net.rawpeer import header
from .lab import GW, PEER, Lab, authenticated_peer, message, open_stream, refused

H = header(GW, PEER).decode()
M = f"<message from='x@{PEER}' to='y@{GW}' type='chat'>"
BILLION_LAUGHS = (
    "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
    + "".join(f"<!ENTITY lol{i} '{('&lol' + (str(i - 1) if i > 1 else '') + ';') * 10}'>" for i in range(1, 10))
    + "]><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='g.test'"
    " from='p.test' version='1.0'>&lol9;"
)

# name -> (what comes first: "raw" instead of a header, "header" after one; the bytes; the condition)
CASES: dict[str, tuple[str, bytes, str]] = {
    "dtd": ("raw", b"<?xml version='1.0'?><!DOCTYPE stream:stream [<!ELEMENT stream:stream ANY>]>" + H.encode(),
            "restricted-xml"),
    "internal-entity": ("raw", b"<!DOCTYPE s [<!ENTITY x 'y'>]>" + H.encode() + b"&x;", "restricted-xml"),
    "external-entity": ("raw", b"<!DOCTYPE s [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>" + H.encode() + b"&x;",
                        "restricted-xml"),
    "external-dtd": ("raw", b"<!DOCTYPE s SYSTEM 'http://127.0.0.99/evil.dtd'>" + H.encode(), "restricted-xml"),
    "billion-laughs": ("raw", BILLION_LAUGHS.encode(), "restricted-xml"),
    "undefined-entity": ("header", f"{M}<body>&lol;</body></message>".encode(), "restricted-xml"),
    "comment": ("header", b"<!-- hello -->", "restricted-xml"),
    "comment-in-stanza": ("header", f"{M}<!-- hello --></message>".encode(), "restricted-xml"),
    "processing-instruction": ("header", b"<?evil x?>", "restricted-xml"),
    "xml-declaration-mid-stream": ("header", b"<?xml version='1.0'?>", "not-well-formed"),
    "utf16-declared": ("raw", H.replace("<?xml version='1.0'?>", "<?xml version='1.0' encoding='UTF-16'?>")
                       .encode(), "unsupported-encoding"),
    "invalid-utf8": ("header", M.encode() + b"<body>\xff\xfe</body></message>", "not-well-formed"),
    "overlong-utf8-lt": ("header", M.encode() + b"<body>\xc0\xbc/body></message>", "not-well-formed"),
    "utf8-surrogate": ("header", M.encode() + b"<body>\xed\xa0\x80</body></message>", "not-well-formed"),
    "nul": ("header", M.encode() + b"<body>a\x00b</body></message>", "not-well-formed"),
    "control-character": ("header", M.encode() + b"<body>a\x01b</body></message>", "not-well-formed"),
    "control-character-reference": ("header", M.encode() + b"<body>a&#1;b</body></message>", "not-well-formed"),
    "nul-reference": ("header", M.encode() + b"<body>&#0;</body></message>", "not-well-formed"),
    "undeclared-element-prefix": ("header", b"<foo:message/>", "bad-namespace-prefix"),
    "undeclared-attribute-prefix": ("header", f"{M}<body foo:x='1'/></message>".encode(), "bad-namespace-prefix"),
    "rebound-xml-prefix": ("header", b"<message xmlns:xml='http://evil'/>", "bad-namespace-prefix"),
    "wrong-default-namespace": ("raw", header(GW, PEER, ns="jabber:client"), "invalid-namespace"),
    "wrong-stream-namespace": ("raw", H.replace("http://etherx.jabber.org/streams", "urn:evil").encode(),
                               "invalid-namespace"),
    "nested-stream": ("header", H.split("?>", 1)[1].encode(), "invalid-xml"),
    "text-between-stanzas": ("header", b"hello", "bad-format"),
    "duplicate-attribute": ("header", b"<message to='a' to='b'/>", "not-well-formed"),
    "unclosed-tag-then-close": ("header", b"<message></stream:stream>", "not-well-formed"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_xml(lab: Lab, name: str) -> None:
    when, data, condition = CASES[name]

    async def scenario() -> None:
        peer = await lab.connect()
        try:
            if when == "header":
                await open_stream(peer)
            started = time.monotonic()
            peer.send(data)
            out = await refused(peer, condition)
            assert time.monotonic() - started < 2  # no expansion, no fetching, no waiting
            assert peer.headers, "the error travels inside a stream of the gateway's"
            assert b"root:" not in peer.received  # nothing of /etc/passwd came back
            assert len(out.elements) <= 2
        finally:
            await peer.close()

    lab.run(scenario())


def _error_text(out_elements: list[object]) -> str:
    el = out_elements[-1]
    return "".join(c.text or "" for c in el if c.tag.endswith("}text"))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "stanza", "text"),
    [
        ("oversized-stanza", M + "<body>" + "x" * 70000 + "</body></message>", "larger than"),
        ("deep-nesting-10000", M + "<a>" * 10000 + "</a>" * 10000 + "</message>", "nested deeper"),
        ("attributes-10000", "<message " + " ".join(f"a{i}='v'" for i in range(10000)) + "/>", "attributes"),
    ],
)
def test_limits_on_an_authenticated_stream(lab: Lab, name: str, stanza: str, text: str) -> None:
    """Limits apply after authentication too: policy-violation, whose text names the limit hit."""
    if name == "attributes-10000":
        lab.gateway_settings(max_stanza_size=262144)  # so that the attribute count, not the size, trips first

    async def scenario() -> None:
        peer = await authenticated_peer(lab)
        try:
            peer.send(stanza)
            out = await refused(peer, "policy-violation")
            assert text in _error_text(out.elements)
        finally:
            await peer.close()

    lab.run(scenario())


def test_slow_drip_is_cut_at_the_establishment_deadline(lab: Lab) -> None:
    """One byte a second of a stream header: the deadline counts from the connection, not the last byte."""
    lab.gateway_settings(stream_establishment_timeout=2)

    async def scenario() -> None:
        peer = await lab.connect()
        try:
            started = time.monotonic()
            legit = asyncio.ensure_future(lab.exchange())  # the partner's traffic during the attack
            data = header(GW, PEER)
            for i in range(10):  # bounded: the gateway must cut us off after ~2 of them
                peer.send(data[i : i + 1])
                if await peer.poll(1.0) and peer.eof:
                    break
            await legit
            out = await refused(peer, "connection-timeout")
            elapsed = time.monotonic() - started
            assert 1.9 <= elapsed < 3.5, elapsed
            assert out.closed
        finally:
            await peer.close()

    lab.run(scenario())


def test_a_stream_never_closed(lab: Lab) -> None:
    """An authenticated peer that ends TCP without ``</stream:stream>``: the gateway delivers what came
    complete, drops the unfinished stanza, closes its own stream and lets go of the connection."""

    async def scenario() -> None:
        assert lab.comp_g is not None
        peer = await authenticated_peer(lab)
        try:
            peer.send(message(f"x@{PEER}", f"y@{GW}", "complete"))
            peer.send(f"{M}<body>unfinished")
            got = await lab.comp_g.next_message(5)
            assert str(got["body"]) == "complete"
            peer.writer.write_eof()
            out = await peer.read_until_closed()
            assert out.condition is None and out.closed and out.eof
            await asyncio.sleep(0.2)
            assert lab.comp_g.received.empty()
        finally:
            await peer.close()

    lab.run(scenario())
