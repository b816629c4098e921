"""Server Dialback (XEP-0220) keys and elements. Keys follow XEP-0185:

    key = HEX( HMAC-SHA256( HEX(SHA-256(secret)), receiving + " " + originating + " " + stream_id ) )

so the authoritative server can check a key it generated without remembering it."""

from __future__ import annotations

import hashlib
import hmac
from xml.etree.ElementTree import Element, SubElement

DIALBACK_NS = "jabber:server:dialback"
DIALBACK_FEATURE_NS = "urn:xmpp:features:dialback"
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"

RESULT = f"{{{DIALBACK_NS}}}result"
VERIFY = f"{{{DIALBACK_NS}}}verify"


def dialback_key(secret: str, receiving: str, originating: str, stream_id: str) -> str:
    hashed_secret = hashlib.sha256(secret.encode()).hexdigest().encode()
    message = f"{receiving} {originating} {stream_id}".encode()
    return hmac.new(hashed_secret, message, hashlib.sha256).hexdigest()


def key_is_valid(secret: str, receiving: str, originating: str, stream_id: str, key: str) -> bool:
    expected = dialback_key(secret, receiving, originating, stream_id)
    return hmac.compare_digest(expected.encode(), key.strip().encode())


def result_request(originating: str, receiving: str, key: str) -> Element:
    el = Element(RESULT, {"from": originating, "to": receiving})
    el.text = key
    return el


def result_answer(receiving: str, originating: str, type_: str, error: str | None = None) -> Element:
    """The receiving server's verdict, addressed back to the originating domain."""
    el = Element(RESULT, {"from": receiving, "to": originating, "type": type_})
    if error:
        err = SubElement(el, "{jabber:server}error", {"type": "cancel"})
        SubElement(err, f"{{{STANZAS_NS}}}{error}")
    return el


def verify_request(receiving: str, originating: str, stream_id: str, key: str) -> Element:
    el = Element(VERIFY, {"from": receiving, "to": originating, "id": stream_id})
    el.text = key
    return el


def verify_answer(originating: str, receiving: str, stream_id: str, type_: str, error: str | None = None) -> Element:
    el = Element(VERIFY, {"from": originating, "to": receiving, "id": stream_id, "type": type_})
    if error:
        err = SubElement(el, "{jabber:server}error", {"type": "cancel"})
        SubElement(err, f"{{{STANZAS_NS}}}{error}")
    return el


def error_condition(el: Element) -> str | None:
    for err in el:
        if err.tag.endswith("}error"):
            for cond in err:
                if cond.tag.startswith(f"{{{STANZAS_NS}}}"):
                    return cond.tag.split("}", 1)[1]
    return None
