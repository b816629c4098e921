"""fedgate: an XMPP federation gateway."""

__version__ = "0.1.0"
