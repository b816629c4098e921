"""Properties of the stream parser and serialiser (hypothesis, bounded)."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, SubElement

from hypothesis import given, settings
from hypothesis import strategies as st

from fedgate.errors import StreamError
from fedgate.xmlstream import (
    STREAM_CLOSE,
    XML_NS,
    ElementReceived,
    StreamClosed,
    XmlEvent,
    XmlStreamParser,
    serialize,
    stream_header,
)

DB = "jabber:server:dialback"
NS = "jabber:server"
HEADER = stream_header(default_ns=NS, to="b.example", from_="a.example", id="i", extra_ns={"db": DB})
_XML_CHAR = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

xml_chars = st.characters(exclude_categories=("Cs",)).filter(lambda c: _XML_CHAR.fullmatch(c) is not None)
tricky = st.sampled_from(
    [
        "</body></message><message to='victim@b'><body>x",
        "</message><message>",
        "]]>",
        "<![CDATA[",
        "&amp;",
        "&lt;",
        "&#0;",
        "'\"",
        "\r\n",
        "\U0001f600",
        "é",
        "<!--",
        "<?xml version='1.0'?>",
        "</stream:stream>",
    ]
)
texts = st.lists(st.one_of(st.text(xml_chars, max_size=20), tricky), max_size=4).map("".join)
names = st.sampled_from(["to", "from", "id", "type", "x", "y"])


@st.composite
def stanzas(draw: st.DrawFn) -> Element:
    kind = draw(st.sampled_from(["message", "presence", "iq"]))
    attrs = draw(st.dictionaries(names, texts, max_size=3))
    el = Element(f"{{{NS}}}{kind}", attrs)
    if draw(st.booleans()):
        el.set(f"{{{XML_NS}}}lang", draw(st.sampled_from(["en", "zh-TW", "ja"])))
    el.text = draw(texts) or None
    for _ in range(draw(st.integers(0, 3))):
        ns = draw(st.sampled_from([NS, "urn:x", DB]))
        child = SubElement(el, f"{{{ns}}}c", draw(st.dictionaries(names, texts, max_size=2)))
        child.text = draw(texts) or None
        child.tail = draw(texts) or None
        if draw(st.booleans()):
            SubElement(child, f"{{{NS}}}d").text = draw(texts) or None
    return el


def shape(events: list[XmlEvent]) -> list[object]:
    return [(serialize(e.element, default_ns=""), e.size) if isinstance(e, ElementReceived) else e for e in events]


def same(a: Element, b: Element) -> bool:
    return (
        a.tag == b.tag
        and a.attrib == b.attrib
        and (a.text or "") == (b.text or "")
        and (a.tail or "") == (b.tail or "")
        and len(a) == len(b)
        and all(same(x, y) for x, y in zip(a, b, strict=True))
    )


@settings(max_examples=200, deadline=None)
@given(stanzas(), st.booleans())
def test_serialize_parse_roundtrip(el: Element, declare: bool) -> None:
    data = serialize(el, default_ns=NS, prefixes={"db": DB}, declare_prefixes=declare)
    p = XmlStreamParser()
    p.feed(HEADER)
    events = p.feed(data)
    assert len(events) == 1  # never more than one element, whatever the text
    assert isinstance(events[0], ElementReceived)
    assert events[0].size == len(data)
    assert same(events[0].element, el)


@settings(max_examples=100, deadline=None)
@given(st.lists(stanzas(), max_size=5), st.lists(st.integers(0, 10_000), max_size=12), st.booleans())
def test_arbitrary_splits_give_identical_events(elements: list[Element], cuts: list[int], close: bool) -> None:
    wire = HEADER + b" ".join(serialize(e, default_ns=NS, prefixes={"db": DB}) for e in elements)
    if close:
        wire += b"\n" + STREAM_CLOSE
    whole = shape(XmlStreamParser().feed(wire))
    assert len(whole) == 1 + len(elements) + close
    assert isinstance(whole[-1], StreamClosed) == close
    points = sorted({c % (len(wire) + 1) for c in cuts})
    p = XmlStreamParser()
    events: list[XmlEvent] = []
    prev = 0
    for c in [*points, len(wire)]:
        events += p.feed(wire[prev:c])
        prev = c
    assert shape(events) == whole


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.booleans(), st.integers(1, 50))
def test_garbage_only_raises_stream_error(garbage: bytes, after_header: bool, step: int) -> None:
    p = XmlStreamParser(max_stanza_size=200)
    data = (HEADER if after_header else b"") + garbage
    try:
        for i in range(0, len(data), step):
            for event in p.feed(data[i : i + step]):
                assert isinstance(event, XmlEvent)
    except StreamError:
        pass


markup = st.sampled_from(
    [
        b"<",
        b">",
        b"/",
        b"'",
        b'"',
        b"=",
        b"&",
        b";",
        b"!",
        b"?",
        b"-",
        b"[",
        b"]",
        b"a",
        b"db:",
        b"xmlns",
        b" ",
        b"&amp;",
        b"<!DOCTYPE",
        b"<!--",
        b"<?",
        b"<![CDATA[",
        b"\xc3",
        b"\xa9",
        b"\x00",
        b"</stream:stream>",
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(markup, max_size=60).map(b"".join))
def test_markup_like_garbage_only_raises_stream_error(garbage: bytes) -> None:
    p = XmlStreamParser(max_stanza_size=200, max_depth=5)
    try:
        p.feed(HEADER)
        p.feed(garbage)
    except StreamError:
        pass


def _feed_all(p: XmlStreamParser, pieces: list[bytes], *, hibernate: bool) -> tuple[list[object], str | None]:
    """Feed ``pieces`` in turn (asking the parser to hibernate before each one); the events' shapes, and the
    condition of the error that ended the stream, if one did."""
    events: list[XmlEvent] = []
    try:
        for piece in pieces:
            if hibernate:
                p.hibernate()
            events += p.feed(piece)
    except StreamError as e:
        return shape(events), e.condition
    return shape(events), None


@settings(max_examples=150, deadline=None)
@given(
    st.lists(stanzas(), max_size=5),
    st.lists(st.integers(0, 10_000), max_size=12),
    st.sampled_from([b"", b" ", b"<x", b"</stream:stream>", b"<message><body>x</y></message>", b"<a/>&bogus;"]),
    st.sampled_from(["stream", "s"]),
)
def test_hibernating_between_any_pieces_changes_nothing(
    elements: list[Element], cuts: list[int], tail: bytes, prefix: str
) -> None:
    """Asked to hibernate at every cut (it only does at an element boundary), the parser gives the same events,
    sizes and errors as one that never hibernates, whatever the stream prefix and whatever follows."""
    header = HEADER.replace(b"stream:", prefix.encode() + b":").replace(b"xmlns:stream", b"xmlns:" + prefix.encode())
    body = b" ".join(serialize(e, default_ns=NS, prefixes={"db": DB}) for e in elements)
    wire = header + b"\n " + body + b" " + tail.replace(b"stream:", prefix.encode() + b":")
    points = sorted({c % (len(wire) + 1) for c in cuts})
    pieces = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    assert _feed_all(XmlStreamParser(), pieces, hibernate=True) == _feed_all(XmlStreamParser(), pieces, hibernate=False)
