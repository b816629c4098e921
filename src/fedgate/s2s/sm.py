"""XEP-0198 Stream Management on S2S streams: acknowledgements only (no resumption).

The initiating side enables it after authentication (XEP-0198 3: never before) when the receiving side offered
``<sm xmlns='urn:xmpp:sm:3'/>``; from its ``<enable/>`` on it keeps every stanza it sent until the peer's
``<a h='N'/>`` (N: stanzas the peer handled since then, modulo 2^32) covers it. What is unacknowledged when the
stream fails is sent once more on a new stream (see ``OutboundStream.withdraw_unsent``): without resumption
a stanza the peer handled but whose ack was lost with the connection is delivered twice, never lost.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

SM_NS = "urn:xmpp:sm:3"
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
SM_FEATURE = f"{{{SM_NS}}}sm"
ENABLE = f"{{{SM_NS}}}enable"
ENABLED = f"{{{SM_NS}}}enabled"
FAILED = f"{{{SM_NS}}}failed"
REQUEST = f"{{{SM_NS}}}r"
ANSWER = f"{{{SM_NS}}}a"
SM_TAGS = frozenset({ENABLE, ENABLED, FAILED, REQUEST, ANSWER, f"{{{SM_NS}}}resume", f"{{{SM_NS}}}resumed"})
H_MODULO = 2**32
# The initiating side asks for an ack after this many stanzas (and whenever the link goes quiet).
REQUEST_EVERY = 8

ENABLE_BYTES = f"<enable xmlns='{SM_NS}'/>".encode()
ENABLED_BYTES = f"<enabled xmlns='{SM_NS}'/>".encode()
REQUEST_BYTES = f"<r xmlns='{SM_NS}'/>".encode()


def answer_bytes(h: int) -> bytes:
    return f"<a xmlns='{SM_NS}' h='{h % H_MODULO}'/>".encode()


def failed_bytes(condition: str) -> bytes:
    return f"<failed xmlns='{SM_NS}'><{condition} xmlns='{STANZAS_NS}'/></failed>".encode()


def parse_h(el: Element) -> int | None:
    """The ``h`` of ``<a/>``: an unsigned 32-bit integer (XEP-0198 schema: xs:unsignedInt), else None."""
    value = (el.get("h") or "").strip()
    if not value.isdigit() or not value.isascii():
        return None
    h = int(value)
    return h if h < H_MODULO else None


def too_high(h: int, sent: int) -> bytes:
    """XEP-0198 5: the application-specific condition of the ``undefined-condition`` stream error for an
    ``h`` above the stanzas sent."""
    return f"<handled-count-too-high xmlns='{SM_NS}' h='{h}' send-count='{sent % H_MODULO}'/>".encode()


def has_feature(features: Element | None) -> bool:
    return features is not None and features.find(SM_FEATURE) is not None


def add_feature(features: Element) -> None:
    SubElement(features, SM_FEATURE)
