"""Where a stanza goes: to a local domain's component, out to a federated partner over S2S, or back as an error.

Pure core: no sockets, no asyncio, no clock. ``Router.route(stanza, origin)`` decides and returns actions; the
asyncio layer carries them out. Every input gives at least one action: a stanza that can be neither delivered
nor bounced comes back as ``Dropped`` with a reason, for the caller to log and count.

Choices (RFC 6120 section 8.3.3 conditions):

* no ``to``: ``bad-request`` (nothing is malformed, the address is missing); an unparsable ``to``:
  ``jid-malformed``.
* no or unparsable ``from``: ``Dropped`` -- the component and S2S machines check ``from`` before the router sees
  a stanza (and end the stream with ``invalid-from`` / ``improper-addressing``), so this is a broken contract,
  and there is no address to bounce to.
* a local domain whose component is not connected: ``service-unavailable``.
* from a component to a domain that is neither local nor a partner: ``remote-server-not-found``.
* from a component whose ``from`` is not a local domain, to a partner: ``not-allowed`` (we would have to open
  an S2S stream for a domain we do not serve).
* from a partner to any domain that is not local: ``not-allowed``. We are not an open relay. ``not-allowed``
  rather than ``service-unavailable`` says it is a rule, not an outage; the same condition and text whether
  the target is another partner or unknown, so a partner cannot probe who our other partners are.
* from a ``public_unverified`` partner, a ``<message/>`` or a ``<presence type='subscribe'/>`` to a local
  address reaches it only if that local user has authorised the sender (an outbound subscribe or subscribed
  recorded in the ``AuthorizationBook``); otherwise ``subscription-required`` (type auth). This also holds for
  stanzas to a bare local domain (the local "user" is then the domain itself, which nobody authorises):
  messages to a service are refused from unverified partners. Every other presence and every iq pass:
  probes, availability and subscription answers are needed for rosters to work, and iq (disco, ping, vCard)
  is request/response that the component answers or refuses itself. Error replies (``type='error'``) pass
  too: a local user must learn that what they sent bounced (and an error is never answered with an error).
  An unknown partner type is treated as ``public_unverified`` (the safe side).
* errors to a partner are sent from the original ``to`` when that is a local domain; otherwise (a stanza that
  should never have got past the S2S machine, which refuses foreign domains with ``host-unknown``) from the
  first local domain in sort order, whose name then also replaces the reply's ``from``: a peer would answer
  a stanza from a domain the stream is not authenticated for with ``<invalid-from/>`` and close the stream.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol
from xml.etree.ElementTree import Element

from .i18n import t
from .partners import PartnerType, normalize_domain
from .stanza import MESSAGE, PRESENCE, Jid, JidError, bounce_reason, error_reply, is_stanza, kind, parse_jid


def _text(key: str, **fields: object) -> str:
    # Bounce texts go out in English: the language of the person who will read them is unknown.
    return t(key, "en", **fields)


# --- origins and actions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FromComponent:
    """Came in from the XEP-0114 component serving local ``domain``."""

    domain: str


@dataclass(frozen=True)
class FromPartner:
    """Came in on an S2S stream authenticated for the remote ``domain``."""

    domain: str


Origin = FromComponent | FromPartner


@dataclass(frozen=True)
class DeliverToComponent:
    """Write ``stanza`` to the component serving local ``domain``."""

    domain: str
    stanza: Element


@dataclass(frozen=True)
class SendToPartner:
    """Send ``stanza`` on the outbound S2S stream keyed by (``local_domain``, ``remote_domain``)."""

    remote_domain: str
    local_domain: str
    stanza: Element


@dataclass(frozen=True)
class Dropped:
    """``stanza`` goes nowhere: it may not be answered with an error (an error, an iq result) or there is no
    one to answer. The caller logs and counts it; it is never silent."""

    stanza: Element
    reason: str


Action = DeliverToComponent | SendToPartner | Dropped


# --- what the router asks of the rest ------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerInfo:
    domain: str
    partner_type: str
    additional_domains: tuple[str, ...] = ()


class PartnerDirectory(Protocol):
    def find_partner(self, domain: str) -> PartnerInfo | None:
        """The partner whose domain or one of whose additional domains is ``domain`` (normalised)."""
        ...


class AuthorizationBook(Protocol):
    """Which remote contacts each local user has reached out to or authorised (the public_unverified rule)."""

    def record(self, local_bare: str, remote_bare: str) -> None: ...

    def is_authorized(self, local_bare: str, remote_bare: str) -> bool: ...


class MemoryAuthorizationBook:
    """An ``AuthorizationBook`` in memory (lost on restart)."""

    def __init__(self) -> None:
        self._pairs: set[tuple[str, str]] = set()

    def record(self, local_bare: str, remote_bare: str) -> None:
        self._pairs.add((local_bare, remote_bare))

    def is_authorized(self, local_bare: str, remote_bare: str) -> bool:
        return (local_bare, remote_bare) in self._pairs

    def __len__(self) -> int:
        return len(self._pairs)


# Partner types whose users may message local users and ask for their presence without prior authorisation.
UNGATED_PARTNER_TYPES: frozenset[str] = frozenset({PartnerType.FEDERATED, PartnerType.PUBLIC_VERIFIED})
# Outbound presence types by which a local user reaches out to / authorises a remote contact.
AUTHORIZING_PRESENCE_TYPES: frozenset[str] = frozenset({"subscribe", "subscribed"})


def _parse_or_none(value: str | None) -> Jid | None:
    if value is None:
        return None
    try:
        return parse_jid(value)
    except JidError:
        return None


class Router:
    """Decides where each stanza goes. ``local_domains`` and ``connected_components`` give normalised domains
    (lower case, A-labels: ``fedgate.partners.normalize_domain``); a fixed ``local_domains`` collection is
    normalised once here, a callable is asked on every stanza and should return a set."""

    def __init__(
        self,
        *,
        local_domains: Callable[[], Collection[str]] | Collection[str],
        connected_components: Callable[[], Collection[str]],
        partners: PartnerDirectory,
        authorizations: AuthorizationBook,
    ) -> None:
        if callable(local_domains):
            self._local_domains = local_domains
        else:
            fixed = frozenset(normalize_domain(d) for d in local_domains)
            self._local_domains = lambda: fixed
        self._connected_components = connected_components
        self._partners = partners
        self._authorizations = authorizations

    def route(self, stanza: Element, origin: Origin) -> list[Action]:
        if not is_stanza(stanza):
            return [Dropped(stanza, f"<{kind(stanza)}/> is not a stanza")]
        sender = _parse_or_none(stanza.get("from"))
        if sender is None:
            return [Dropped(stanza, f"missing or malformed 'from' {stanza.get('from')!r} from {origin}")]
        local = self._local_domains()
        raw_to = stanza.get("to")
        if raw_to is None:
            return self._bounce(stanza, origin, local, None, "bad-request", _text("router.to_missing"))
        try:
            to = parse_jid(raw_to)
        except JidError:
            return self._bounce(stanza, origin, local, None, "jid-malformed", _text("router.to_malformed", to=raw_to))
        if isinstance(origin, FromComponent):
            return self._from_component(stanza, origin, local, sender, to)
        return self._from_partner(stanza, origin, local, sender, to)

    def _from_component(
        self, stanza: Element, origin: FromComponent, local: Collection[str], sender: Jid, to: Jid
    ) -> list[Action]:
        if to.domain in local:
            return self._deliver(stanza, origin, local, to)
        if self._partners.find_partner(to.domain) is None:
            text = _text("router.not_a_partner", domain=to.domain)
            return self._bounce(stanza, origin, local, to, "remote-server-not-found", text)
        if sender.domain not in local:
            text = _text("router.sender_not_local", domain=sender.domain)
            return self._bounce(stanza, origin, local, to, "not-allowed", text)
        if stanza.tag == PRESENCE and stanza.get("type") in AUTHORIZING_PRESENCE_TYPES:
            self._authorizations.record(sender.bare, to.bare)
        return [SendToPartner(remote_domain=to.domain, local_domain=sender.domain, stanza=stanza)]

    def _from_partner(
        self, stanza: Element, origin: FromPartner, local: Collection[str], sender: Jid, to: Jid
    ) -> list[Action]:
        if to.domain not in local:
            return self._bounce(stanza, origin, local, to, "not-allowed", _text("router.no_relay", domain=to.domain))
        partner = self._partners.find_partner(origin.domain)
        if partner is None:
            return [Dropped(stanza, f"{origin.domain} is not (or no longer) a federated partner")]
        if (
            partner.partner_type not in UNGATED_PARTNER_TYPES
            and stanza.get("type") != "error"  # an error reply: the local user must learn what bounced
            and (stanza.tag == MESSAGE or (stanza.tag == PRESENCE and stanza.get("type") == "subscribe"))
            and not self._authorizations.is_authorized(to.bare, sender.bare)
        ):
            text = _text("router.subscription_required", recipient=to.bare, sender=sender.bare)
            return self._bounce(stanza, origin, local, to, "subscription-required", text)
        return self._deliver(stanza, origin, local, to)

    def _deliver(self, stanza: Element, origin: Origin, local: Collection[str], to: Jid) -> list[Action]:
        if to.domain in self._connected_components():
            return [DeliverToComponent(to.domain, stanza)]
        text = _text("router.component_unavailable", domain=to.domain)
        return self._bounce(stanza, origin, local, to, "service-unavailable", text)

    def _bounce(
        self, stanza: Element, origin: Origin, local: Collection[str], to: Jid | None, condition: str, text: str
    ) -> list[Action]:
        """The error reply to ``stanza``, routed back the way it came."""
        reply = error_reply(stanza, condition, text=text)
        if reply is None:
            return [Dropped(stanza, f"{condition} not sent: {bounce_reason(stanza)}")]
        if isinstance(origin, FromComponent):
            return [DeliverToComponent(origin.domain, reply)]
        if to is not None and to.domain in local:
            speaker = to.domain
        else:
            speaker = min(local, default="")
            if not speaker:
                return [Dropped(stanza, f"{condition} not sent: no local domain to send it from")]
            reply.set("from", speaker)
        return [SendToPartner(remote_domain=origin.domain, local_domain=speaker, stanza=reply)]
