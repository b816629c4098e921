"""Stanza helpers: JIDs (RFC 7622, minimal), what counts as a stanza, and RFC 6120 section 8.3 error replies.

Pure: no I/O. Stanzas are ``xml.etree.ElementTree.Element`` objects with Clark names in the ``jabber:server``
namespace; the component and S2S layers convert namespaces before and after.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from .errors import STANZA_ERROR_TYPES, FedgateError
from .partners import FieldError, normalize_domain

SERVER_NS = "jabber:server"
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
MESSAGE = f"{{{SERVER_NS}}}message"
PRESENCE = f"{{{SERVER_NS}}}presence"
IQ = f"{{{SERVER_NS}}}iq"
STANZA_TAGS: frozenset[str] = frozenset({MESSAGE, PRESENCE, IQ})
ERROR = f"{{{SERVER_NS}}}error"

MAX_JID_PART = 1023
"""RFC 7622 section 3: each of localpart, domainpart and resourcepart is at most 1023 octets (UTF-8)."""

# RFC 7622 section 3.3.1: characters a localpart must not contain (besides '@' and '/', which split the JID).
_LOCALPART_FORBIDDEN = frozenset("\"&':<>")


class JidError(FedgateError, ValueError):
    """A string that is not an XMPP address."""

    def __init__(self, value: str, problem: str) -> None:
        self.value = value
        self.problem = problem
        super().__init__(f"{value!r} is not a JID: {problem}")


@dataclass(frozen=True, slots=True)
class Jid:
    """``local@domain/resource``; ``local`` and ``resource`` are None when absent. ``domain`` is normalised
    (lower case, IDNA A-labels), so two JIDs of the same domain compare equal."""

    local: str | None
    domain: str
    resource: str | None = None

    @property
    def bare(self) -> str:
        """``local@domain`` (or ``domain``), without the resource."""
        return self.domain if self.local is None else f"{self.local}@{self.domain}"

    def __str__(self) -> str:
        return self.bare if self.resource is None else f"{self.bare}/{self.resource}"


def _check_part(value: str, part: str, what: str) -> None:
    if not part:
        raise JidError(value, f"empty {what}")
    if len(part) > MAX_JID_PART // 4 and len(part.encode("utf-8")) > MAX_JID_PART:
        raise JidError(value, f"{what} longer than {MAX_JID_PART} octets")


@functools.lru_cache(maxsize=8192)
def parse_jid(value: str) -> Jid:
    """Parse ``value`` (RFC 7622 section 3.1 order: resource after the first '/', local before the first '@').

    Validation is minimal: a non-empty, IDNA-valid domain (normalised by ``fedgate.partners.normalize_domain``,
    so JIDs and partner records agree); a lower-cased localpart; no empty localpart or resourcepart when their
    separator is present; no part longer than 1023 octets; none of ``" & ' : < >`` in the localpart.
    Raises ``JidError``. Results are cached: the same addresses recur on every stanza of a conversation.
    """
    rest, slash, resource = value.partition("/")
    local, at, domain = rest.partition("@")
    if not at:
        local, domain = "", rest
    elif any(c in _LOCALPART_FORBIDDEN or c.isspace() for c in local):
        raise JidError(value, "forbidden character in localpart")
    if at:
        _check_part(value, local, "localpart")
    if slash:
        _check_part(value, resource, "resourcepart")
    _check_part(value, domain, "domainpart")
    try:
        normalized = normalize_domain(domain, "domainpart")
    except FieldError as exc:
        raise JidError(value, f"bad domainpart ({exc.problem})") from None
    # The localpart is compared case-insensitively (RFC 7622 section 3.3: PRECIS UsernameCaseMapped maps case
    # and NFC); the resourcepart is case-sensitive and kept as is.
    folded = unicodedata.normalize("NFC", local).lower() if at else None
    return Jid(folded, normalized, resource if slash else None)


def is_stanza(el: Element) -> bool:
    """A ``<message/>``, ``<presence/>`` or ``<iq/>`` in the ``jabber:server`` namespace."""
    return el.tag in STANZA_TAGS


def kind(el: Element) -> str:
    """``message``, ``presence``, ``iq`` (or the bare local name of anything else)."""
    return el.tag.rpartition("}")[2]


def bounce_reason(stanza: Element) -> str | None:
    """Why ``stanza`` must never be answered with an error, for logs; None when it may be bounced."""
    if not is_stanza(stanza):
        return f"<{kind(stanza)}/> is not a stanza"
    stanza_type = stanza.get("type")
    if stanza_type == "error":
        return f"{kind(stanza)} of type 'error' is never answered with an error (RFC 6120 section 8.3.1)"
    if stanza.tag == IQ and stanza_type == "result":
        return "iq of type 'result' is never answered with an error (RFC 6120 section 8.2.3)"
    return None


def describe(stanza: Element) -> str:
    """One log-friendly line: ``message type=chat id=1 from=a@b to=c@d``."""
    fields = " ".join(f"{name}={stanza.get(name)}" for name in ("type", "id", "from", "to") if name in stanza.attrib)
    return f"{kind(stanza)} {fields}" if fields else kind(stanza)


def error_reply(stanza: Element, condition: str, *, text: str | None = None, by: str | None = None) -> Element | None:
    """The RFC 6120 section 8.3 error reply to ``stanza``, or None when it must not get one (``bounce_reason``).

    ``to`` and ``from`` are swapped, ``id`` is kept, ``type='error'``; the only child is ``<error type=...>``
    (the type ``fedgate.errors.STANZA_ERROR_TYPES`` gives for ``condition``) with the condition element and,
    when given, ``<text/>``. Nothing of the original payload is copied: not a message's ``<body/>`` (peers
    and Prosody expect an error without one, and echoing a body back would make bounces a reflection
    channel), not an iq's query.
    """
    error_type = STANZA_ERROR_TYPES.get(condition)
    if error_type is None:
        raise ValueError(f"not an RFC 6120 stanza error condition: {condition}")
    if bounce_reason(stanza) is not None:
        return None
    attrib = {"type": "error"}
    for reply_name, original_name in (("from", "to"), ("to", "from"), ("id", "id")):
        value = stanza.get(original_name)
        if value is not None:
            attrib[reply_name] = value
    reply = Element(stanza.tag, attrib)
    error = SubElement(reply, ERROR, {"type": error_type})
    if by is not None:
        error.set("by", by)
    SubElement(error, f"{{{STANZAS_NS}}}{condition}")
    if text is not None:
        SubElement(error, f"{{{STANZAS_NS}}}text").text = text
    return reply


def error_condition(stanza: Element) -> str | None:
    """The defined condition of an error stanza (``service-unavailable``), None when there is none."""
    error = stanza.find(ERROR)
    if error is None:
        return None
    for child in error:
        name = child.tag.rpartition("}")[2]
        if child.tag.startswith(f"{{{STANZAS_NS}}}") and name != "text":
            return name
    return None
