"""fedgate.stanza: JID parsing, stanza recognition, RFC 6120 section 8.3 error replies."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

import pytest

from fedgate.errors import STANZA_ERROR_TYPES
from fedgate.stanza import (
    ERROR,
    IQ,
    MESSAGE,
    PRESENCE,
    STANZAS_NS,
    Jid,
    JidError,
    bounce_reason,
    describe,
    error_condition,
    error_reply,
    is_stanza,
    parse_jid,
)


@pytest.mark.parametrize(
    ("text", "local", "domain", "resource", "bare", "full"),
    [
        ("example.org", None, "example.org", None, "example.org", "example.org"),
        ("alice@example.org", "alice", "example.org", None, "alice@example.org", "alice@example.org"),
        ("alice@example.org/phone", "alice", "example.org", "phone", "alice@example.org", "alice@example.org/phone"),
        ("example.org/service", None, "example.org", "service", "example.org", "example.org/service"),
        ("Alice@EXAMPLE.Org/Phone", "alice", "example.org", "Phone", "alice@example.org", "alice@example.org/Phone"),
        ("alice@example.org.", "alice", "example.org", None, "alice@example.org", "alice@example.org"),
        ("a@bücher.example", "a", "xn--bcher-kva.example", None, "a@xn--bcher-kva.example", None),
        ("a@example.org/r/with@and/slash", "a", "example.org", "r/with@and/slash", "a@example.org", None),
        ("example.org/a@b", None, "example.org", "a@b", "example.org", None),
        ("ünïcode@example.org", "ünïcode", "example.org", None, "ünïcode@example.org", None),
        ("a@127.0.0.1", "a", "127.0.0.1", None, "a@127.0.0.1", None),
        ("x" * 1023 + "@example.org", "x" * 1023, "example.org", None, "x" * 1023 + "@example.org", None),
    ],
)
def test_parse_jid(
    text: str, local: str | None, domain: str, resource: str | None, bare: str, full: str | None
) -> None:
    jid = parse_jid(text)
    assert jid == Jid(local, domain, resource)
    assert (jid.local, jid.domain, jid.resource, jid.bare) == (local, domain, resource, bare)
    assert str(jid) == (full if full is not None else text if resource else bare)
    assert parse_jid(str(jid)) == jid


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty domainpart"),
        ("@example.org", "empty localpart"),
        ("alice@", "empty domainpart"),
        ("alice@example.org/", "empty resourcepart"),
        ("/resource", "empty domainpart"),
        ("al ice@example.org", "forbidden character"),
        ("al'ice@example.org", "forbidden character"),
        ("a<b@example.org", "forbidden character"),
        ("a:b@example.org", "forbidden character"),
        ("a@b@example.org", "bad domainpart"),
        ("a@exa mple.org", "bad domainpart"),
        ("a@example..org", "bad domainpart"),
        ("a@example.org:5269", "bad domainpart"),
        ("a@-example.org", "bad domainpart"),
        ("x" * 1024 + "@example.org", "longer than 1023"),
        ("é" * 512 + "@example.org", "longer than 1023"),
        ("a@example.org/" + "r" * 1024, "longer than 1023"),
        ("a@" + "a" * 64 + ".org", "bad domainpart"),
    ],
)
def test_parse_jid_refuses(text: str, problem: str) -> None:
    with pytest.raises(JidError, match=problem) as info:
        parse_jid(text)
    assert isinstance(info.value, ValueError)
    assert info.value.value == text


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        (MESSAGE, True),
        (PRESENCE, True),
        (IQ, True),
        ("{jabber:client}message", False),
        ("{jabber:component:accept}message", False),
        ("message", False),
        ("{jabber:server}error", False),
        ("{http://etherx.jabber.org/streams}features", False),
    ],
)
def test_is_stanza(tag: str, expected: bool) -> None:
    assert is_stanza(Element(tag)) is expected


def _stanza(tag: str, **attrib: str) -> Element:
    return Element(tag, {k.rstrip("_"): v for k, v in attrib.items()})


def _message_with_body() -> Element:
    el = _stanza(MESSAGE, to="bob@remote.example/x", from_="alice@chat.example.org/r", id="m1", type="chat")
    SubElement(el, "{jabber:server}body").text = "hello"
    SubElement(el, "{jabber:server}thread").text = "t1"
    SubElement(el, "{urn:xmpp:receipts}request")
    return el


def _iq_with_query() -> Element:
    el = _stanza(IQ, to="remote.example", from_="chat.example.org", id="q1", type="get")
    SubElement(el, "{http://jabber.org/protocol/disco#info}query")
    return el


@pytest.mark.parametrize(
    ("stanza", "condition"),
    [
        (_message_with_body(), "service-unavailable"),
        (_message_with_body(), "subscription-required"),
        (_iq_with_query(), "remote-server-not-found"),
        (_stanza(IQ, to="a@b.example", from_="c@d.example", id="s1", type="set"), "not-allowed"),
        (_stanza(PRESENCE, to="a@b.example", from_="c@d.example", type="subscribe"), "subscription-required"),
        (_stanza(PRESENCE, to="a@b.example", from_="c@d.example"), "jid-malformed"),
        (_stanza(MESSAGE, to="a@b.example", from_="c@d.example"), "bad-request"),
        (_stanza(MESSAGE, to="a@b.example", from_="c@d.example", type="groupchat", id="g"), "forbidden"),
    ],
)
def test_error_reply(stanza: Element, condition: str) -> None:
    reply = error_reply(stanza, condition, text="because", by="b.example")
    assert reply is not None
    assert reply.tag == stanza.tag
    assert reply.get("type") == "error"
    assert reply.get("to") == stanza.get("from")
    assert reply.get("from") == stanza.get("to")
    assert reply.get("id") == stanza.get("id")
    assert ("id" in reply.attrib) == ("id" in stanza.attrib)
    # The error is the only child: no body, thread, receipt request or query is copied.
    assert [child.tag for child in reply] == [ERROR]
    error = reply[0]
    assert error.get("type") == STANZA_ERROR_TYPES[condition]
    assert error.get("by") == "b.example"
    assert [child.tag for child in error] == [f"{{{STANZAS_NS}}}{condition}", f"{{{STANZAS_NS}}}text"]
    assert error[1].text == "because"
    assert error_condition(reply) == condition
    # The original is untouched.
    assert stanza.get("type") != "error"


@pytest.mark.parametrize("condition", sorted(STANZA_ERROR_TYPES))
def test_error_reply_type_for_every_condition(condition: str) -> None:
    reply = error_reply(_stanza(MESSAGE, to="a@b.example", from_="c@d.example"), condition)
    assert reply is not None
    error = reply.find(ERROR)
    assert error is not None
    assert error.get("type") == STANZA_ERROR_TYPES[condition]
    assert "by" not in error.attrib
    assert [child.tag for child in error] == [f"{{{STANZAS_NS}}}{condition}"]


def test_error_reply_without_addresses() -> None:
    reply = error_reply(_stanza(PRESENCE), "bad-request")
    assert reply is not None
    assert dict(reply.attrib) == {"type": "error"}


def test_error_reply_refuses_unknown_condition() -> None:
    with pytest.raises(ValueError, match="host-unknown"):
        error_reply(_stanza(MESSAGE, to="a@b.example"), "host-unknown")


@pytest.mark.parametrize(
    ("stanza", "reason"),
    [
        (_stanza(MESSAGE, type="error", to="a@b.example", from_="c@d.example"), "type 'error'"),
        (_stanza(PRESENCE, type="error", to="a@b.example", from_="c@d.example"), "type 'error'"),
        (_stanza(IQ, type="error", id="1", to="a@b.example", from_="c@d.example"), "type 'error'"),
        (_stanza(IQ, type="result", id="1", to="a@b.example", from_="c@d.example"), "type 'result'"),
        (_stanza("{jabber:server}foo", to="a@b.example"), "not a stanza"),
        (_stanza("{jabber:client}message", to="a@b.example"), "not a stanza"),
    ],
)
def test_never_answered_with_an_error(stanza: Element, reason: str) -> None:
    assert reason in (bounce_reason(stanza) or "")
    assert error_reply(stanza, "service-unavailable") is None


@pytest.mark.parametrize(
    "stanza",
    [
        _stanza(MESSAGE),
        _stanza(MESSAGE, type="normal"),
        _stanza(PRESENCE, type="unavailable"),
        _stanza(PRESENCE, type="probe"),
        _stanza(IQ, type="get"),
        _stanza(IQ, type="set"),
    ],
)
def test_bounceable(stanza: Element) -> None:
    assert bounce_reason(stanza) is None


def test_describe() -> None:
    assert (
        describe(_message_with_body())
        == "message type=chat id=m1 from=alice@chat.example.org/r to=bob@remote.example/x"
    )
    assert describe(_stanza(PRESENCE)) == "presence"


def test_error_condition_absent() -> None:
    assert error_condition(_message_with_body()) is None
    el = _stanza(MESSAGE, type="error")
    SubElement(SubElement(el, ERROR, type="cancel"), f"{{{STANZAS_NS}}}text").text = "only text"
    assert error_condition(el) is None
