"""The restricted-XML stream parser and the serialiser: every rule with its exact stream-error condition."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

import pytest

from fedgate.errors import StreamError
from fedgate.xmlstream import (
    STREAM_CLOSE,
    STREAM_NS,
    XML_NS,
    ElementReceived,
    StreamClosed,
    StreamOpened,
    XmlEvent,
    XmlStreamParser,
    rename_namespace,
    serialize,
    stream_error,
    stream_header,
)

DB = "jabber:server:dialback"
HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'"
    b" xmlns:db='jabber:server:dialback' to='b.example' from='a.example' id='s1' version='1.0' xml:lang='en'>"
)
BODY = (
    b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
    b"  <db:result from='a.example' to='b.example'>abc</db:result>\n\t\r"
    b"<message xml:lang='de' to='x@b.example' from='y@a.example' type='chat'>"
    b"<body>1 &lt; 2 &amp;&amp; &apos;q&apos; &quot;d&quot; &#x1F600; \xc3\xa9 &#60;/body&#62;</body></message> "
    b"<presence/><iq type='get' id='1' to='b.example'><query xmlns='jabber:iq:version'/></iq>"
)
STREAM = HEADER + BODY + STREAM_CLOSE


def feed_all(data: bytes, parser: XmlStreamParser | None = None) -> list[XmlEvent]:
    return (parser or XmlStreamParser()).feed(data)


def condition(data: bytes, parser: XmlStreamParser | None = None) -> str:
    with pytest.raises(StreamError) as info:
        (parser or XmlStreamParser()).feed(data)
    return info.value.condition


def shape(events: list[XmlEvent]) -> list[object]:
    """Comparable form of events (Elements compare by identity)."""
    out: list[object] = []
    for e in events:
        if isinstance(e, ElementReceived):
            out.append(("el", serialize(e.element, default_ns=""), e.size))
        else:
            out.append(e)
    return out


def test_realistic_s2s_stream() -> None:
    events = feed_all(STREAM)
    opened = events[0]
    assert opened == StreamOpened(
        attrs={"to": "b.example", "from": "a.example", "id": "s1", "version": "1.0", "xml:lang": "en"},
        default_ns="jabber:server",
        prefixes={"stream": STREAM_NS, "db": DB},
    )
    assert isinstance(events[-1], StreamClosed)
    elements = [e for e in events if isinstance(e, ElementReceived)]
    assert len(events) == len(elements) + 2
    features, result, message, presence, iq = (e.element for e in elements)
    assert features.tag == "{http://etherx.jabber.org/streams}features"
    assert features[0].tag == "{urn:ietf:params:xml:ns:xmpp-tls}starttls"
    assert features[0][0].tag == "{urn:ietf:params:xml:ns:xmpp-tls}required"
    assert result.tag == "{jabber:server:dialback}result"
    assert result.attrib == {"from": "a.example", "to": "b.example"}
    assert result.text == "abc"
    assert message.tag == "{jabber:server}message"
    assert message.get(f"{{{XML_NS}}}lang") == "de"
    assert message.get("type") == "chat"
    body = message.find("{jabber:server}body")
    assert body is not None
    assert body.text == "1 < 2 && 'q' \"d\" \U0001f600 é </body>"
    assert presence.tag == "{jabber:server}presence"
    assert iq[0].tag == "{jabber:iq:version}query"
    # sizes are the exact bytes of each element on the wire
    assert elements[1].size == len(b"<db:result from='a.example' to='b.example'>abc</db:result>")
    assert elements[3].size == len(b"<presence/>")


def test_sizes_exact() -> None:
    raw = [
        b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>",
        b"<a x='/>' y=\"'>\"/>",
        b"<b  ></b >",
        b"<c/>",
    ]
    for split in (False, True):
        p = XmlStreamParser()
        data = HEADER + b" ".join(raw)
        events: list[XmlEvent] = []
        if split:
            for i in range(len(data)):
                events += p.feed(data[i : i + 1])
        else:
            events = p.feed(data)
        assert [e.size for e in events if isinstance(e, ElementReceived)] == [len(r) for r in raw]


def test_every_byte_split_gives_identical_events() -> None:
    whole = shape(feed_all(STREAM))
    for i in range(len(STREAM) + 1):
        p = XmlStreamParser()
        assert shape(p.feed(STREAM[:i]) + p.feed(STREAM[i:])) == whole, i
    p = XmlStreamParser()
    events: list[XmlEvent] = []
    for i in range(len(STREAM)):
        events += p.feed(STREAM[i : i + 1])
    assert shape(events) == whole


def test_keepalive_whitespace_gives_no_event() -> None:
    p = XmlStreamParser(max_stanza_size=100)
    assert len(p.feed(HEADER)) == 1
    for _ in range(500):  # far more whitespace than max_stanza_size, in separate reads
        assert p.feed(b" ") == []
    assert p.feed(b"\n\r\t  ") == []
    assert isinstance(p.feed(b"<presence/>")[0], ElementReceived)


def test_text_between_elements_is_bad_format() -> None:
    assert condition(HEADER + b"hello") == "bad-format"


def test_empty_feed() -> None:
    assert XmlStreamParser().feed(b"") == []


@pytest.mark.parametrize(
    ("data", "cond"),
    [
        (b"<?xml version='1.0'?><!DOCTYPE stream:stream>", "restricted-xml"),
        (
            b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;&lol;'>]>"
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>&lol2;",
            "restricted-xml",
        ),
        (HEADER + b"<!-- hi -->", "restricted-xml"),
        (HEADER + b"<message><!-- hi --></message>", "restricted-xml"),
        (HEADER + b"<?foo bar?>", "restricted-xml"),
        (HEADER + b"<message>&foo;</message>", "restricted-xml"),
        (HEADER + b"<message>&lt</message>", "not-well-formed"),
        (HEADER + b"<message><body></message>", "not-well-formed"),
        (HEADER + b"<message a='1' a='2'/>", "not-well-formed"),
        (HEADER + b"<?xml version='1.0'?>", "not-well-formed"),
        (HEADER + b"<foo:bar/>", "bad-namespace-prefix"),
        (HEADER + b"<message foo:x='1'/>", "bad-namespace-prefix"),
        (HEADER + b"<message xmlns:xml='urn:x'/>", "bad-namespace-prefix"),
        (HEADER + b"<message>\xff\xfe</message>", "not-well-formed"),
        (HEADER + b"<message>\xc3</message>", "not-well-formed"),  # truncated UTF-8
        (HEADER + b"<message>\xed\xa0\x80</message>", "not-well-formed"),  # UTF-8 encoded surrogate
        (HEADER + b"<message>\xc0\xaf</message>", "not-well-formed"),  # overlong
        (HEADER + b"<message>\x00</message>", "not-well-formed"),
        (HEADER + b"<message>\x01</message>", "not-well-formed"),
        (HEADER + b"<message>\x1f</message>", "not-well-formed"),
        (HEADER + b"<message>&#0;</message>", "not-well-formed"),
        (HEADER + b"<message>&#1;</message>", "not-well-formed"),
        (HEADER + b"<message>\xef\xbf\xbf</message>", "not-well-formed"),  # U+FFFF
        (HEADER + b"<message>\xef\xbf\xbe</message>", "not-well-formed"),  # U+FFFE
        (HEADER + b"<message>&#xFFFF;</message>", "not-well-formed"),
        (HEADER + b"<message>&#xD800;</message>", "not-well-formed"),
        (HEADER + b"<message>\xf4\x90\x80\x80</message>", "not-well-formed"),  # above U+10FFFF
        (b"<?xml version='1.0' encoding='UTF-16'?><stream:stream/>", "unsupported-encoding"),
        (b"\xfe\xff\x00<", "unsupported-encoding"),  # UTF-16 byte order mark
        (b"\xff\xfe<\x00", "unsupported-encoding"),
        (b"\x00\x00\x00<", "unsupported-encoding"),
        ("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>".encode("utf-16-le"), "unsupported-encoding"),
        (b" <?xml version='1.0'?>", "not-well-formed"),  # the declaration only at the very start
        (HEADER + b"<message a='\x02'/>", "not-well-formed"),
        (b"<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream/>", "unsupported-encoding"),
        (b"<stream xmlns='urn:x'>", "invalid-namespace"),
        (b"<stream:stream xmlns:stream='urn:wrong'>", "invalid-namespace"),
        (b"<html>", "invalid-namespace"),
        (HEADER + b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>", "invalid-xml"),
        (b"garbage<", "not-well-formed"),
        (b"\xef\xbb\xbf\xef\xbb\xbf", "not-well-formed"),
    ],
)
def test_rejections(data: bytes, cond: str) -> None:
    assert condition(data) == cond
    p = XmlStreamParser()  # the same, byte by byte
    with pytest.raises(StreamError) as info:
        for i in range(len(data)):
            p.feed(data[i : i + 1])
    assert info.value.condition == cond


def test_nested_stream_inside_stanza() -> None:
    # a stream:stream element anywhere below the stream element is not a restart: invalid-xml at first level,
    # and an ordinary (odd) payload element deeper down.
    events = feed_all(HEADER + b"<message><stream:stream/></message>")
    assert isinstance(events[1], ElementReceived)
    assert events[1].element[0].tag == f"{{{STREAM_NS}}}stream"


def test_billion_laughs_rejected_before_expansion() -> None:
    doc = b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol0 'lol'>"
    for i in range(1, 20):
        doc += b"<!ENTITY lol%d '%s'>" % (i, b"&lol%d;" % (i - 1) * 10)
    doc += b"]><stream:stream xmlns:stream='http://etherx.jabber.org/streams'><a>&lol19;</a>"
    assert condition(doc) == "restricted-xml"


def test_external_entity_rejected() -> None:
    doc = (
        b"<?xml version='1.0'?><!DOCTYPE s [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>&x;"
    )
    assert condition(doc) == "restricted-xml"


def test_stanza_too_large_in_one_feed() -> None:
    p = XmlStreamParser(max_stanza_size=1000)
    p.feed(HEADER)
    assert isinstance(p.feed(b"<message>" + b"a" * 900 + b"</message>")[0], ElementReceived)
    assert condition(b"<message>" + b"a" * 1000 + b"</message>", p) == "policy-violation"


@pytest.mark.parametrize("opening", [b"<message><body>", b"<message to='"], ids=["text", "start-tag"])
def test_stanza_too_large_detected_while_streaming(opening: bytes) -> None:
    p = XmlStreamParser(max_stanza_size=1000)
    p.feed(HEADER + opening)
    with pytest.raises(StreamError) as info:
        for _ in range(200):
            p.feed(b"a" * 10)
    assert info.value.condition == "policy-violation"
    assert p._total < len(HEADER) + 1000 + 30  # stopped as soon as the limit was passed


def test_huge_header_is_bounded() -> None:
    with pytest.raises(StreamError) as info:
        XmlStreamParser(max_stanza_size=1000).feed(b"<stream:stream to='" + b"a" * 2000)
    assert info.value.condition == "policy-violation"


def test_large_feed_is_sliced() -> None:
    p = XmlStreamParser(max_stanza_size=1000)
    data = HEADER + b"<message>" + b"a" * 10_000_000
    assert condition(data, p) == "policy-violation"


def test_many_stanzas_in_one_large_feed() -> None:
    stanza = b"<message to='x@b.example'><body>hello</body></message>"
    events = feed_all(HEADER + stanza * 5000)
    assert len(events) == 5001
    assert all(e.size == len(stanza) for e in events[1:] if isinstance(e, ElementReceived))


def test_depth_limit() -> None:
    p = XmlStreamParser(max_depth=3)
    p.feed(HEADER)
    assert p.feed(b"<a><b><c/></b></a>")
    assert condition(b"<a><b><c><d/></c></b></a>", p) == "policy-violation"


def test_attribute_limit() -> None:
    p = XmlStreamParser(max_attributes=3)
    p.feed(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='a' from='b'>")
    assert p.feed(b"<a x='1' y='2' z='3'/>")
    assert condition(b"<a><b w='0' x='1' y='2' z='3'/></a>", p) == "policy-violation"
    assert (
        condition(
            b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='' b='' c='' d=''>",
            XmlStreamParser(max_attributes=3),
        )
        == "policy-violation"
    )


def test_after_close_further_data_is_ignored() -> None:
    p = XmlStreamParser()
    events = p.feed(HEADER + STREAM_CLOSE + b"<garbage")
    assert isinstance(events[-1], StreamClosed)
    assert p.closed
    assert p.feed(b"more garbage <<<") == []


def test_after_error_feed_raises_again() -> None:
    p = XmlStreamParser()
    p.feed(HEADER)
    with pytest.raises(StreamError) as first:
        p.feed(b"<<<")
    with pytest.raises(StreamError) as second:
        p.feed(b"<presence/>")
    assert second.value is first.value


def test_reset_starts_a_new_stream() -> None:
    p = XmlStreamParser()
    p.feed(HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    p.reset()
    events = p.feed(HEADER + b"<presence/>")
    assert isinstance(events[0], StreamOpened)
    assert isinstance(events[1], ElementReceived)
    assert events[1].size == len(b"<presence/>")
    with pytest.raises(StreamError):
        p.feed(b"<<")  # error ...
    p.reset()  # ... and reset clears it
    assert isinstance(p.feed(HEADER)[0], StreamOpened)


def test_component_header() -> None:
    [opened] = feed_all(
        b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'"
        b" to='comp.example'>"
    )
    assert isinstance(opened, StreamOpened)
    assert opened.default_ns == "jabber:component:accept"
    assert opened.attrs == {"to": "comp.example"}


def test_header_without_default_namespace() -> None:
    [opened] = feed_all(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>")
    assert isinstance(opened, StreamOpened)
    assert opened.default_ns == ""
    assert opened.prefixes == {"stream": STREAM_NS}


def test_prefixed_default_stream() -> None:
    # the stream element in a default namespace is allowed by XML, and it is still the stream element
    [opened] = feed_all(b"<stream xmlns='http://etherx.jabber.org/streams'>")
    assert isinstance(opened, StreamOpened)
    assert opened.default_ns == STREAM_NS


def test_cdata_section_is_text() -> None:
    stanza = b"<message><body><![CDATA[<b>&</x>]]></body></message>"
    events = feed_all(HEADER + stanza)
    assert isinstance(events[1], ElementReceived)
    assert events[1].element[0].text == "<b>&</x>"
    assert events[1].size == len(stanza)


def test_other_stream_prefix() -> None:
    events = feed_all(b"<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server'><s:features/>")
    assert isinstance(events[0], StreamOpened)
    assert events[0].prefixes == {"s": STREAM_NS}
    assert isinstance(events[1], ElementReceived)
    assert events[1].element.tag == f"{{{STREAM_NS}}}features"


def test_mixed_content_tails() -> None:
    events = feed_all(HEADER + b"<message>a<x/>b<y>c</y>d</message>")
    assert isinstance(events[1], ElementReceived)
    el = events[1].element
    assert (el.text, el[0].tail, el[1].text, el[1].tail) == ("a", "b", "c", "d")


# -- serialiser ----------------------------------------------------------------------------------------


def roundtrip(el: Element, default_ns: str = "jabber:server", **kw: object) -> Element:
    data = serialize(el, default_ns=default_ns, **kw)  # type: ignore[arg-type]
    p = XmlStreamParser()
    p.feed(stream_header(default_ns=default_ns, to="b", from_="a", extra_ns={"db": DB}))
    events = p.feed(data)
    assert len(events) == 1
    assert isinstance(events[0], ElementReceived)
    assert events[0].size == len(data)
    return events[0].element


def test_serialize_namespaces() -> None:
    msg = Element("{jabber:server}message", {"to": "a@b", f"{{{XML_NS}}}lang": "en"})
    body = SubElement(msg, "{jabber:server}body")
    body.text = "hi"
    x = SubElement(msg, "{jabber:x:oob}x")
    SubElement(x, "{jabber:x:oob}url").text = "http://x/?a=1&b=2"
    SubElement(x, "{jabber:server}back")
    assert serialize(msg, default_ns="jabber:server") == (
        b"<message to='a@b' xml:lang='en'><body>hi</body><x xmlns='jabber:x:oob'><url>http://x/?a=1&amp;b=2</url>"
        b"<back xmlns='jabber:server'/></x></message>"
    )
    assert roundtrip(msg)[1][1].tag == "{jabber:server}back"


def test_serialize_prefixes() -> None:
    r = Element(f"{{{DB}}}result", {"from": "a", "to": "b"})
    r.text = "key"
    assert (
        serialize(r, default_ns="jabber:server", prefixes={"db": DB}) == b"<db:result from='a' to='b'>key</db:result>"
    )
    assert serialize(r, default_ns="jabber:server", prefixes={"db": DB}, declare_prefixes=True) == (
        b"<db:result xmlns:db='jabber:server:dialback' from='a' to='b'>key</db:result>"
    )
    assert serialize(r, default_ns="jabber:server") == (
        b"<result xmlns='jabber:server:dialback' from='a' to='b'>key</result>"
    )
    assert roundtrip(r, prefixes={"db": DB}).tag == f"{{{DB}}}result"


def test_serialize_no_namespace_and_foreign_attribute() -> None:
    el = Element("{jabber:server}message", {"{urn:x}a": "1"})
    SubElement(el, "plain")
    out = roundtrip(el)
    assert out[0].tag == "plain"
    assert out.attrib == {"{urn:x}a": "1"}


def test_serialize_escapes_smuggling() -> None:
    evil = "</body></message><message to='victim@b'><body>pwned</body></message><message><body>"
    msg = Element("{jabber:server}message", {"to": "x'\"><message>&"})
    SubElement(msg, "{jabber:server}body").text = evil
    out = roundtrip(msg)
    assert out.get("to") == "x'\"><message>&"
    assert out[0].text == evil


def test_serialize_whitespace_in_attributes_and_cr_in_text() -> None:
    msg = Element("{jabber:server}message", {"id": "a\tb\nc\r\nd  e"})
    SubElement(msg, "{jabber:server}body").text = "l1\r\nl2\rl3\n]]>"
    out = roundtrip(msg)
    assert out.get("id") == "a\tb\nc\r\nd  e"
    assert out[0].text == "l1\r\nl2\rl3\n]]>"


def test_serialize_rejects_unwritable_characters() -> None:
    el = Element("{jabber:server}message")
    el.text = "a\x00b"
    with pytest.raises(ValueError):
        serialize(el, default_ns="jabber:server")
    el = Element("{jabber:server}message", {"a": "\ufffe"})
    with pytest.raises(ValueError):
        serialize(el, default_ns="jabber:server")


def test_stream_header() -> None:
    h = stream_header(
        default_ns="jabber:server", to="b.example", from_="a.example", id="x1", extra_ns={"db": DB}, lang="en"
    )
    assert h == (
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'"
        b" xmlns:db='jabber:server:dialback' to='b.example' from='a.example' id='x1' version='1.0' xml:lang='en'>"
    )
    [opened] = feed_all(h)
    assert isinstance(opened, StreamOpened)
    assert opened.attrs == {"to": "b.example", "from": "a.example", "id": "x1", "version": "1.0", "xml:lang": "en"}
    h2 = stream_header(default_ns="jabber:component:accept", to=None, from_="c'x", version=None)
    assert h2 == (
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept'"
        b" xmlns:stream='http://etherx.jabber.org/streams' from='c&apos;x'>"
    )


def test_stream_error() -> None:
    assert stream_error("host-unknown") == (
        b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
    )
    data = stream_error("policy-violation", "too <big> & bad")
    assert data == (
        b"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>too &lt;big&gt; &amp; bad</text></stream:error>"
    )
    events = feed_all(HEADER + data + STREAM_CLOSE)
    assert isinstance(events[1], ElementReceived)
    assert events[1].element[1].text == "too <big> & bad"
    with pytest.raises(ValueError):
        stream_error("no-such-condition")


def test_rename_namespace() -> None:
    msg = Element("{jabber:component:accept}message", {"to": "a"})
    body = SubElement(msg, "{jabber:component:accept}body")
    x = SubElement(msg, "{urn:other}x")
    inner = SubElement(x, "{jabber:component:accept}inner")
    assert rename_namespace(msg, "jabber:component:accept", "jabber:server") is msg
    assert msg.tag == "{jabber:server}message"
    assert body.tag == "{jabber:server}body"
    assert x.tag == "{urn:other}x"
    assert inner.tag == "{jabber:component:accept}inner"  # below another namespace: not the stanza's namespace


def test_text_longer_than_the_parser_text_buffer_arrives_whole() -> None:
    from fedgate.xmlstream import TEXT_BUFFER_SIZE

    body = ("0123456789abcdef&<>'\"é" * (3 * TEXT_BUFFER_SIZE // 10))[: 3 * TEXT_BUFFER_SIZE + 17]
    msg = Element("{jabber:server}message", {"to": "a@b"})
    SubElement(msg, "{jabber:server}body").text = body
    wire = (
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>"
        + serialize(msg, default_ns="jabber:server")
    )
    for chunk in (len(wire), 1000, 7):
        parser = XmlStreamParser()
        events = [e for i in range(0, len(wire), chunk) for e in parser.feed(wire[i : i + chunk])]
        [stanza] = [e.element for e in events if isinstance(e, ElementReceived)]
        assert stanza.findtext("{jabber:server}body") == body


def test_hibernate_only_between_elements_and_wakes_with_the_stream_state() -> None:
    p = XmlStreamParser(max_stanza_size=300)
    assert not p.hibernate()  # no header yet
    header = (b"<s:stream xmlns='jabber:server' xmlns:s='http://etherx.jabber.org/streams' "
              b"xmlns:db='jabber:server:dialback' to='b.example' version='1.0'>")
    p.feed(header)
    p.feed(b"<message><body>half")
    assert not p.hibernate()  # inside a stanza
    p.feed(b"</body></message>  ")
    assert p.hibernate() and p.hibernating
    # the woken parser knows the header's prefixes, counts sizes from the real stream, and keeps the limits
    [ev] = p.feed(b"<db:result from='a.example' to='b.example'>k</db:result>")
    assert isinstance(ev, ElementReceived)
    assert ev.element.tag == "{jabber:server:dialback}result" and ev.size == 56
    assert p.hibernate()
    with pytest.raises(StreamError) as e:
        p.feed(b"<message>" + b"x" * 400 + b"</message>")
    assert e.value.condition == "policy-violation"
    assert not p.hibernate()  # after an error


def test_hibernate_after_close_and_the_close_tag_of_a_woken_stream() -> None:
    p = XmlStreamParser()
    p.feed(b"<s:stream xmlns='jabber:server' xmlns:s='http://etherx.jabber.org/streams'>")
    assert p.hibernate()
    assert p.feed(b"</s:stream>") == [StreamClosed()]
    assert not p.hibernate()


def test_a_hibernating_parser_holds_far_less_memory() -> None:
    import tracemalloc

    header = stream_header(default_ns="jabber:server", to="b.example", from_="a.example", id="i")
    stanza = b"<message to='u@b.example' from='v@a.example' id='1'><body>hello</body></message>"

    def held(hibernate: bool) -> int:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            parsers = []
            for _ in range(200):
                p = XmlStreamParser()
                p.feed(header)
                p.feed(stanza)
                if hibernate:
                    assert p.hibernate()
                parsers.append(p)
            return (tracemalloc.get_traced_memory()[0] - before) // len(parsers)
        finally:
            tracemalloc.stop()

    awake, asleep = held(False), held(True)
    assert awake > 8000  # expat's state for one stream
    assert asleep < awake / 5, (awake, asleep)


@pytest.mark.parametrize("end", ["release", "error", "close"])
def test_a_finished_stream_is_freed_at_once_not_by_the_cycle_collector(end: str) -> None:
    """expat's handlers are the parser's own methods: unless that cycle is broken when the stream ends, a flood
    of unfinished streams keeps their buffers until the next full collection."""
    import gc
    import weakref

    gc.disable()
    try:
        p = XmlStreamParser()
        p.feed(b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>")
        p.feed(b"<message><body>" + b"x" * 5000)  # an unfinished stanza, buffered
        if end == "release":
            p.release()
            assert p.feed(b"</body></message>") == []
        elif end == "error":
            with pytest.raises(StreamError):
                p.feed(b"</wrong>")
            assert p._p is None and not p._buf  # what was big is gone with the error already
            p.release()  # and the error's traceback (which holds feed()'s frame) with the release
        else:
            p2 = XmlStreamParser()
            p2.feed(b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>")
            assert p2.feed(b"</stream:stream>") == [StreamClosed()]
            p = p2
        ref = weakref.ref(p)
        del p
        if end == "close":
            del p2
        assert ref() is None
    finally:
        gc.enable()
