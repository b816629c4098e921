"""fedgate.router: where each stanza goes, what is bounced with which condition, and the invariants."""

from __future__ import annotations

from collections.abc import Callable, Collection
from xml.etree.ElementTree import Element, SubElement

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedgate.errors import STANZA_ERROR_TYPES
from fedgate.router import (
    Action,
    DeliverToComponent,
    Dropped,
    FromComponent,
    FromPartner,
    MemoryAuthorizationBook,
    Origin,
    PartnerInfo,
    Router,
    SendToPartner,
)
from fedgate.stanza import ERROR, IQ, MESSAGE, PRESENCE, STANZAS_NS, error_condition, parse_jid

CHAT = "chat.example.org"  # local, component connected
CONF = "conf.example.org"  # local, component not connected
LOCAL = (CHAT, CONF)

PARTNERS = (
    PartnerInfo("fed.example", "federated", ("fed-alt.example",)),
    PartnerInfo("ver.example", "public_verified"),
    PartnerInfo("unv.example", "public_unverified", ("unv-alt.example",)),
    PartnerInfo("odd.example", "no_such_type"),
)


class Directory:
    def __init__(self, partners: Collection[PartnerInfo] = PARTNERS) -> None:
        self.by_domain = {d: p for p in partners for d in (p.domain, *p.additional_domains)}
        self.asked: list[str] = []

    def find_partner(self, domain: str) -> PartnerInfo | None:
        self.asked.append(domain)
        return self.by_domain.get(domain)


def make_router(
    local: Callable[[], Collection[str]] | Collection[str] = LOCAL,
    connected: Collection[str] = (CHAT,),
    book: MemoryAuthorizationBook | None = None,
) -> Router:
    return Router(
        local_domains=local,
        connected_components=lambda: frozenset(connected),
        partners=Directory(),
        authorizations=book if book is not None else MemoryAuthorizationBook(),
    )


def stanza(tag: str, frm: str | None, to: str | None, type_: str | None = None, *, body: str | None = None) -> Element:
    attrib = {"id": "s1"}
    for name, value in (("from", frm), ("to", to), ("type", type_)):
        if value is not None:
            attrib[name] = value
    el = Element(tag, attrib)
    if body is not None:
        SubElement(el, "{jabber:server}body").text = body
    if tag == IQ:
        SubElement(el, "{urn:xmpp:ping}ping")
    return el


def only(actions: list[Action]) -> Action:
    assert len(actions) == 1, actions
    return actions[0]


def error_text(el: Element) -> str:
    return el.findtext(f"{ERROR}/{{{STANZAS_NS}}}text") or ""


def assert_bounce(original: Element, reply: Element, condition: str, *, reply_from: str | None = None) -> None:
    assert reply is not original
    assert reply.tag == original.tag
    assert reply.get("type") == "error"
    assert reply.get("id") == original.get("id")
    assert reply.get("to") == original.get("from")
    assert reply.get("from") == (reply_from if reply_from is not None else original.get("to"))
    assert [child.tag for child in reply] == [ERROR]  # no body, no payload
    assert error_condition(reply) == condition
    error = reply.find(ERROR)
    assert error is not None
    assert error.get("type") == STANZA_ERROR_TYPES[condition]
    assert error_text(reply)


# --- from a component ------------------------------------------------------------------------------------------

ALICE = f"alice@{CHAT}/desk"

# (tag, type, to, expected): expected is ("deliver", domain) | ("send", remote, local) | ("bounce", condition)
FROM_COMPONENT_CASES: list[tuple[str, str | None, str | None, tuple[str, ...]]] = [
    (MESSAGE, "chat", f"bob@{CHAT}", ("deliver", CHAT)),
    (MESSAGE, "chat", CHAT, ("deliver", CHAT)),
    (PRESENCE, None, f"bob@{CHAT}/x", ("deliver", CHAT)),
    (MESSAGE, "chat", f"carol@{CONF}", ("bounce", "service-unavailable")),
    (IQ, "get", CONF, ("bounce", "service-unavailable")),
    (MESSAGE, "chat", "bob@fed.example/x", ("send", "fed.example", CHAT)),
    (MESSAGE, "chat", "bob@FED.Example", ("send", "fed.example", CHAT)),
    (MESSAGE, "chat", "bob@fed-alt.example", ("send", "fed-alt.example", CHAT)),
    (MESSAGE, "chat", "bob@ver.example", ("send", "ver.example", CHAT)),
    (MESSAGE, "chat", "bob@unv.example", ("send", "unv.example", CHAT)),
    (MESSAGE, "chat", "bob@unv-alt.example", ("send", "unv-alt.example", CHAT)),
    (PRESENCE, "subscribe", "bob@unv.example", ("send", "unv.example", CHAT)),
    (PRESENCE, "probe", "bob@odd.example", ("send", "odd.example", CHAT)),
    (IQ, "get", "fed.example", ("send", "fed.example", CHAT)),
    (IQ, "result", "fed.example", ("send", "fed.example", CHAT)),
    (MESSAGE, "error", "bob@fed.example", ("send", "fed.example", CHAT)),
    (MESSAGE, "chat", "bob@unknown.example", ("bounce", "remote-server-not-found")),
    (IQ, "get", "unknown.example", ("bounce", "remote-server-not-found")),
    (PRESENCE, "subscribe", "bob@sub.fed.example", ("bounce", "remote-server-not-found")),
    (MESSAGE, "chat", None, ("bounce", "bad-request")),
    (MESSAGE, "chat", "@fed.example", ("bounce", "jid-malformed")),
    (MESSAGE, "chat", "bob@fed..example", ("bounce", "jid-malformed")),
    (IQ, "set", "bob@fed.example/", ("bounce", "jid-malformed")),
    (MESSAGE, "error", "bob@unknown.example", ("drop", "type 'error'")),
    (IQ, "result", "unknown.example", ("drop", "type 'result'")),
    (PRESENCE, "error", f"carol@{CONF}", ("drop", "type 'error'")),
    (MESSAGE, "error", None, ("drop", "type 'error'")),
]


@pytest.mark.parametrize(("tag", "type_", "to", "expected"), FROM_COMPONENT_CASES)
def test_from_component(tag: str, type_: str | None, to: str | None, expected: tuple[str, ...]) -> None:
    original = stanza(tag, ALICE, to, type_, body="hi" if tag == MESSAGE else None)
    action = only(make_router().route(original, FromComponent(CHAT)))
    match expected:
        case ("deliver", domain):
            assert action == DeliverToComponent(domain, original)
        case ("send", remote, local):
            assert action == SendToPartner(remote_domain=remote, local_domain=local, stanza=original)
        case ("bounce", condition):
            # A bounce to a component goes back to that component, from the address it wrote to.
            assert isinstance(action, DeliverToComponent)
            assert action.domain == CHAT
            assert_bounce(original, action.stanza, condition)
        case ("drop", reason):
            assert isinstance(action, Dropped)
            assert action.stanza is original
            assert reason in action.reason


def test_from_component_bounce_texts_name_the_domain() -> None:
    router = make_router()
    action = only(router.route(stanza(MESSAGE, ALICE, "bob@unknown.example"), FromComponent(CHAT)))
    assert isinstance(action, DeliverToComponent)
    assert "unknown.example is not a federated partner" in error_text(action.stanza)
    action = only(router.route(stanza(MESSAGE, ALICE, f"x@{CONF}"), FromComponent(CHAT)))
    assert isinstance(action, DeliverToComponent)
    assert CONF in error_text(action.stanza)


def test_from_component_sender_must_be_local_to_reach_a_partner() -> None:
    original = stanza(MESSAGE, "mallory@elsewhere.example", "bob@fed.example")
    action = only(make_router().route(original, FromComponent(CHAT)))
    assert isinstance(action, DeliverToComponent)
    assert action.domain == CHAT
    assert_bounce(original, action.stanza, "not-allowed")


def test_from_component_uses_sender_domain_for_the_stream() -> None:
    original = stanza(MESSAGE, f"room@{CONF}/nick", "bob@fed.example")
    action = only(make_router().route(original, FromComponent(CONF)))
    assert action == SendToPartner(remote_domain="fed.example", local_domain=CONF, stanza=original)


# --- from a partner --------------------------------------------------------------------------------------------

BOB = "bob@{}/phone"
ALICE_BARE = f"alice@{CHAT}"

# (tag, type, to) and whether a public_unverified partner needs the recipient's authorisation for it
GATED: list[tuple[str, str | None, str, bool]] = [
    (MESSAGE, "chat", ALICE_BARE, True),
    (MESSAGE, None, f"{ALICE_BARE}/desk", True),
    (MESSAGE, "normal", ALICE_BARE, True),
    (MESSAGE, "headline", ALICE_BARE, True),
    (MESSAGE, "chat", CHAT, True),
    (PRESENCE, "subscribe", ALICE_BARE, True),
    (PRESENCE, None, f"{ALICE_BARE}/desk", False),
    (PRESENCE, "unavailable", ALICE_BARE, False),
    (PRESENCE, "probe", ALICE_BARE, False),
    (PRESENCE, "subscribed", ALICE_BARE, False),
    (PRESENCE, "unsubscribe", ALICE_BARE, False),
    (PRESENCE, "unsubscribed", ALICE_BARE, False),
    (IQ, "get", f"{ALICE_BARE}/desk", False),
    (IQ, "set", ALICE_BARE, False),
    (IQ, "get", CHAT, False),
    (IQ, "result", CHAT, False),
]

PARTNER_ORIGINS = [
    ("fed.example", False),
    ("fed-alt.example", False),
    ("ver.example", False),
    ("unv.example", True),
    ("unv-alt.example", True),
    ("odd.example", True),  # an unknown partner type is treated as public_unverified
]


@pytest.mark.parametrize(("remote", "gated_partner"), PARTNER_ORIGINS)
@pytest.mark.parametrize(("tag", "type_", "to", "gated_stanza"), GATED)
def test_from_partner_partner_types(
    remote: str, gated_partner: bool, tag: str, type_: str | None, to: str, gated_stanza: bool
) -> None:
    original = stanza(tag, BOB.format(remote), to, type_, body="hi" if tag == MESSAGE else None)
    book = MemoryAuthorizationBook()
    action = only(make_router(book=book).route(original, FromPartner(remote)))
    if gated_partner and gated_stanza:
        assert isinstance(action, SendToPartner)
        assert (action.remote_domain, action.local_domain) == (remote, CHAT)
        assert_bounce(original, action.stanza, "subscription-required")
        text = error_text(action.stanza)
        assert f"bob@{remote}" in text
    else:
        assert action == DeliverToComponent(CHAT, original)
    assert len(book) == 0  # inbound stanzas never authorise anyone


@pytest.mark.parametrize(("remote", "gated_partner"), PARTNER_ORIGINS)
def test_from_partner_error_stanzas_reach_the_local_user(remote: str, gated_partner: bool) -> None:
    """An error reply (the local user's message bounced over there) is delivered whatever the partner type:
    the subscription gate does not apply to it, and it is never answered with an error."""
    original = stanza(MESSAGE, BOB.format(remote), ALICE_BARE, "error")
    action = only(make_router().route(original, FromPartner(remote)))
    assert action == DeliverToComponent(CHAT, original)
    assert action.stanza is original


@pytest.mark.parametrize(("remote", "gated_partner"), PARTNER_ORIGINS)
def test_from_partner_error_stanzas_are_never_bounced(remote: str, gated_partner: bool) -> None:
    """...even when they cannot be delivered (here: to a domain that is not ours)."""
    original = stanza(MESSAGE, BOB.format(remote), "x@elsewhere.example", "error")
    action = only(make_router().route(original, FromPartner(remote)))
    assert isinstance(action, Dropped) and "type 'error'" in action.reason
    assert action.stanza is original


# (from-partner, to, expected condition, bounce sent from, stream local domain)
FROM_PARTNER_BOUNCES: list[tuple[str, str | None, str, str, str]] = [
    ("fed.example", f"carol@{CONF}", "service-unavailable", f"carol@{CONF}", CONF),
    ("unv.example", f"carol@{CONF}/x", "subscription-required", f"carol@{CONF}/x", CONF),
    # Not an open relay: to another partner, to an unknown domain: the same refusal.
    ("fed.example", "x@ver.example", "not-allowed", CHAT, CHAT),
    ("fed.example", "x@fed.example", "not-allowed", CHAT, CHAT),
    ("ver.example", "x@unknown.example", "not-allowed", CHAT, CHAT),
    ("fed.example", None, "bad-request", CHAT, CHAT),
    ("fed.example", "@chat.example.org", "jid-malformed", CHAT, CHAT),
]


@pytest.mark.parametrize(("remote", "to", "condition", "reply_from", "local"), FROM_PARTNER_BOUNCES)
def test_from_partner_bounces(remote: str, to: str | None, condition: str, reply_from: str, local: str) -> None:
    original = stanza(MESSAGE, BOB.format(remote), to, "chat", body="secret")
    action = only(make_router().route(original, FromPartner(remote)))
    assert isinstance(action, SendToPartner)
    assert (action.remote_domain, action.local_domain) == (remote, local)
    assert_bounce(original, action.stanza, condition, reply_from=reply_from)
    # The reply's sender is always a domain the (local, remote) stream is authenticated for.
    assert parse_jid(action.stanza.get("from", "")).domain == action.local_domain


def test_no_relay_text_does_not_tell_partners_from_strangers() -> None:
    router = make_router()
    texts = []
    for target in ("ver.example", "unknown.example"):
        action = only(router.route(stanza(MESSAGE, "bob@fed.example", f"x@{target}"), FromPartner("fed.example")))
        texts.append(error_text(action.stanza).replace(target, "D"))
    assert texts[0] == texts[1]


def test_from_non_partner_is_dropped() -> None:
    original = stanza(MESSAGE, "eve@stranger.example", ALICE_BARE, "chat")
    action = only(make_router().route(original, FromPartner("stranger.example")))
    assert isinstance(action, Dropped)
    assert "stranger.example" in action.reason


def test_partner_lookup_uses_the_authenticated_origin() -> None:
    # A public_unverified partner's stream claiming a federated partner's user is still judged as unverified.
    original = stanza(MESSAGE, "bob@fed.example", ALICE_BARE, "chat")
    action = only(make_router().route(original, FromPartner("unv.example")))
    assert isinstance(action, SendToPartner)
    assert error_condition(action.stanza) == "subscription-required"


# --- authorisations --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("authorizing", ["subscribe", "subscribed"])
@pytest.mark.parametrize("remote", ["unv.example", "unv-alt.example"])
def test_outbound_subscription_lets_replies_through(authorizing: str, remote: str) -> None:
    book = MemoryAuthorizationBook()
    router = make_router(book=book)
    inbound = stanza(MESSAGE, f"Bob@{remote}/laptop", f"{ALICE_BARE}/desk", "chat", body="hi")
    assert error_condition(only(router.route(inbound, FromPartner(remote))).stanza) == "subscription-required"

    outbound = stanza(PRESENCE, f"Alice@{CHAT}/desk", f"bob@{remote.upper()}", authorizing)
    assert only(router.route(outbound, FromComponent(CHAT))) == SendToPartner(remote, CHAT, outbound)
    assert book.is_authorized(ALICE_BARE, f"bob@{remote}")

    assert only(router.route(inbound, FromPartner(remote))) == DeliverToComponent(CHAT, inbound)
    subscribe = stanza(PRESENCE, f"bob@{remote}", ALICE_BARE, "subscribe")
    assert only(router.route(subscribe, FromPartner(remote))) == DeliverToComponent(CHAT, subscribe)
    # Only that pair: another local user, another remote user stay gated.
    for frm, to in ((f"bob@{remote}", f"dave@{CHAT}"), (f"eve@{remote}", ALICE_BARE)):
        action = only(router.route(stanza(MESSAGE, frm, to, "chat"), FromPartner(remote)))
        assert error_condition(action.stanza) == "subscription-required"


@pytest.mark.parametrize(
    ("tag", "type_"),
    [(PRESENCE, None), (PRESENCE, "unavailable"), (PRESENCE, "unsubscribe"), (PRESENCE, "probe"), (MESSAGE, "chat")],
)
def test_other_outbound_stanzas_authorise_nobody(tag: str, type_: str | None) -> None:
    book = MemoryAuthorizationBook()
    make_router(book=book).route(stanza(tag, ALICE, "bob@unv.example", type_), FromComponent(CHAT))
    assert len(book) == 0


def test_refused_outbound_subscription_authorises_nobody() -> None:
    book = MemoryAuthorizationBook()
    router = make_router(book=book)
    router.route(stanza(PRESENCE, ALICE, "bob@unknown.example", "subscribe"), FromComponent(CHAT))
    router.route(stanza(PRESENCE, "x@elsewhere.example", "bob@unv.example", "subscribe"), FromComponent(CHAT))
    assert len(book) == 0


# --- configuration ---------------------------------------------------------------------------------------------


def test_local_domains_normalised_once() -> None:
    router = make_router(local=["CHAT.Example.Org.", "Bücher.example"], connected=(CHAT, "xn--bcher-kva.example"))
    original = stanza(MESSAGE, "bob@fed.example", "anna@BÜCHER.example", "chat")
    assert only(router.route(original, FromPartner("fed.example"))) == DeliverToComponent(
        "xn--bcher-kva.example", original
    )


def test_local_domains_callable_is_asked_each_time() -> None:
    served = {CHAT}
    router = make_router(local=lambda: served)
    original = stanza(MESSAGE, ALICE, f"x@{CONF}", "chat")
    assert error_condition(only(router.route(original, FromComponent(CHAT))).stanza) == "remote-server-not-found"
    served.add(CONF)
    assert error_condition(only(router.route(original, FromComponent(CHAT))).stanza) == "service-unavailable"


def test_component_connection_is_asked_each_time() -> None:
    connected: set[str] = set()
    router = Router(
        local_domains=LOCAL,
        connected_components=lambda: connected,
        partners=Directory(),
        authorizations=MemoryAuthorizationBook(),
    )
    original = stanza(MESSAGE, "bob@fed.example", ALICE_BARE, "chat")
    assert error_condition(only(router.route(original, FromPartner("fed.example"))).stanza) == "service-unavailable"
    connected.add(CHAT)
    assert only(router.route(original, FromPartner("fed.example"))) == DeliverToComponent(CHAT, original)


def test_no_local_domain_to_answer_from() -> None:
    original = stanza(MESSAGE, "bob@fed.example", "x@ver.example", "chat")
    action = only(make_router(local=()).route(original, FromPartner("fed.example")))
    assert isinstance(action, Dropped)


@pytest.mark.parametrize(
    ("el", "reason"),
    [
        (stanza(MESSAGE, None, ALICE_BARE, "chat"), "'from'"),
        (stanza(MESSAGE, "@bad", ALICE_BARE, "chat"), "'from'"),
        (stanza("{jabber:client}message", "bob@fed.example", ALICE_BARE), "not a stanza"),
        (Element("{jabber:server}foo"), "not a stanza"),
    ],
)
@pytest.mark.parametrize("origin", [FromComponent(CHAT), FromPartner("fed.example")])
def test_unroutable_input_is_dropped_with_a_reason(el: Element, reason: str, origin: Origin) -> None:
    action = only(make_router().route(el, origin))
    assert isinstance(action, Dropped)
    assert action.stanza is el
    assert reason in action.reason


# --- invariants ------------------------------------------------------------------------------------------------

_DOMAINS = [
    CHAT,
    CONF,
    "fed.example",
    "fed-alt.example",
    "ver.example",
    "unv.example",
    "unv-alt.example",
    "odd.example",
    "unknown.example",
]
_JIDS = st.one_of(
    st.none(),
    st.sampled_from(["", "@", "a@", "@x.example", "a@b@c", "a@x..example", "x.example/", "a b@x.example"]),
    st.builds(
        lambda local, domain, resource: f"{local}{domain}{resource}",
        st.sampled_from(["", "alice@", "Bob@", "ü@"]),
        st.sampled_from(_DOMAINS),
        st.sampled_from(["", "/r", "/R/x"]),
    ),
    st.text(max_size=20),
)
_TYPES = st.sampled_from(
    [
        None,
        "error",
        "result",
        "get",
        "set",
        "chat",
        "normal",
        "groupchat",
        "headline",
        "subscribe",
        "subscribed",
        "unsubscribe",
        "unsubscribed",
        "probe",
        "unavailable",
        "bogus",
    ]
)
_ORIGINS = st.one_of(
    st.builds(FromComponent, st.sampled_from(_DOMAINS)), st.builds(FromPartner, st.sampled_from(_DOMAINS))
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tag=st.sampled_from([MESSAGE, PRESENCE, IQ, "{jabber:client}message", "{jabber:server}error"]),
    frm=_JIDS,
    to=_JIDS,
    type_=_TYPES,
    origin=_ORIGINS,
    connected=st.sets(st.sampled_from(LOCAL)),
    authorized=st.booleans(),
)
def test_every_stanza_gets_an_action_and_errors_never_get_errors(
    tag: str, frm: str | None, to: str | None, type_: str | None, origin: Origin, connected: set[str], authorized: bool
) -> None:
    book = MemoryAuthorizationBook()
    if authorized and frm and to:
        book.record(to, frm)
    original = stanza(tag, frm, to, type_, body="b" if tag == MESSAGE else None)
    actions = make_router(connected=connected, book=book).route(original, origin)
    assert actions
    for action in actions:
        if action.stanza is original:
            continue
        # A new stanza is only ever an error reply to a stanza that may be answered with one.
        assert type_ != "error"
        assert not (tag == IQ and type_ == "result")
        assert action.stanza.get("type") == "error"
        assert [child.tag for child in action.stanza] == [ERROR]
        if isinstance(action, DeliverToComponent):
            assert isinstance(origin, FromComponent)
            assert action.domain == origin.domain
        else:
            assert isinstance(action, SendToPartner)
            assert isinstance(origin, FromPartner)
            assert action.remote_domain == origin.domain
            assert action.local_domain in LOCAL
            assert parse_jid(action.stanza.get("from", "")).domain == action.local_domain
    for action in actions:
        if isinstance(action, SendToPartner) and action.stanza is original:
            # Nothing goes out except from a component, from one of our domains, to a partner.
            assert isinstance(origin, FromComponent)
            assert action.local_domain in LOCAL
        if isinstance(action, DeliverToComponent):
            assert action.domain in connected or action.stanza is not original
