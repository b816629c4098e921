"""What fuzz/fuzz_xmlstream.py found in fedgate.xmlstream (sans-IO, no lab needed)."""

from __future__ import annotations

import pytest

from fedgate.errors import StreamError
from fedgate.xmlstream import XmlStreamParser

from ..net.rawpeer import header


def test_the_error_raised_is_the_error_kept() -> None:
    """Text between stanzas (bad-format, still buffered by expat) then an invalid byte (not-well-formed):
    feed() must raise the same error every later feed() raises, as the module docstring promises."""
    parser = XmlStreamParser()
    with pytest.raises(StreamError) as first:
        parser.feed(header("g.test", "p.test") + b"'\x00")
    with pytest.raises(StreamError) as again:
        parser.feed(b"<x/>")
    assert again.value is first.value
