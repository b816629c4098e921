"""The one exception family for protocol violations. Each carries what the I/O layer must do about it:
the RFC 6120 stream-error condition (section 4.9.3) and a text, so the layer writes ``<stream:error>``
without knowing why."""

from __future__ import annotations

# RFC 6120 section 4.9.3 defined conditions.
STREAM_ERROR_CONDITIONS: frozenset[str] = frozenset(
    {
        "bad-format", "bad-namespace-prefix", "conflict", "connection-timeout", "host-gone", "host-unknown",
        "improper-addressing", "internal-server-error", "invalid-from", "invalid-namespace", "invalid-xml",
        "not-authorized", "not-well-formed", "policy-violation", "remote-connection-failed", "reset",
        "resource-constraint", "restricted-xml", "see-other-host", "system-shutdown", "undefined-condition",
        "unsupported-encoding", "unsupported-feature", "unsupported-stanza-type", "unsupported-version",
    }
)

# RFC 6120 section 8.3.3 stanza error conditions, with the error type each normally carries.
STANZA_ERROR_TYPES: dict[str, str] = {
    "bad-request": "modify", "conflict": "cancel", "feature-not-implemented": "cancel", "forbidden": "auth",
    "gone": "cancel", "internal-server-error": "cancel", "item-not-found": "cancel", "jid-malformed": "modify",
    "not-acceptable": "modify", "not-allowed": "cancel", "not-authorized": "auth", "policy-violation": "modify",
    "recipient-unavailable": "wait", "redirect": "modify", "registration-required": "auth",
    "remote-server-not-found": "cancel", "remote-server-timeout": "wait", "resource-constraint": "wait",
    "service-unavailable": "cancel", "subscription-required": "auth", "undefined-condition": "cancel",
    "unexpected-request": "wait",
}


class FedgateError(Exception):
    """Base of fedgate's own exceptions."""


class StreamError(FedgateError):
    """A protocol violation that ends the stream with ``<stream:error><CONDITION/>``."""

    def __init__(self, condition: str, text: str = "", app: bytes = b"") -> None:
        if condition not in STREAM_ERROR_CONDITIONS:
            raise ValueError(f"not an RFC 6120 stream error condition: {condition}")
        self.condition = condition
        self.text = text
        # An application-specific condition (RFC 6120 4.9.4), serialised: sent after the text.
        self.app = app
        super().__init__(f"{condition}: {text}" if text else condition)
