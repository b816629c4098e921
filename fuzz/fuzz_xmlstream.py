"""Atheris harness: ``fedgate.xmlstream.XmlStreamParser`` on arbitrary bytes, fed in arbitrary pieces.

Findings are crashes (any exception other than ``StreamError``) and broken promises of the module docstring:
after a ``StreamError`` every further ``feed()`` raises that same error; after ``StreamClosed`` ``feed()``
returns ``[]``; an element's reported size is never larger than the bytes fed; a stream error condition is
always an RFC 6120 one; splitting the input differently never changes the events or the error condition.
See fuzz/README.md for how to run it.
"""

from __future__ import annotations

import sys
from xml.etree.ElementTree import tostring

import atheris

with atheris.instrument_imports():
    from fedgate.errors import STREAM_ERROR_CONDITIONS, StreamError
    from fedgate.xmlstream import ElementReceived, StreamClosed, StreamOpened, XmlStreamParser

HEADER = (
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'"
    b" xmlns:db='jabber:server:dialback' to='a.test' from='b.test' version='1.0'>"
)


def _summary(event: object) -> object:
    if isinstance(event, ElementReceived):
        return ("el", tostring(event.element), event.size)
    if isinstance(event, StreamOpened):
        return ("open", sorted(event.attrs.items()), event.default_ns, sorted(event.prefixes.items()))
    assert isinstance(event, StreamClosed)
    return ("close",)


def _run(data: bytes, cuts: list[int], limits: tuple[int, int, int]) -> tuple[list[object], str | None]:
    size, depth, attrs = limits
    parser = XmlStreamParser(max_stanza_size=size, max_depth=depth, max_attributes=attrs)
    events: list[object] = []
    error: StreamError | None = None
    fed = 0
    closed = False
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    for piece in pieces:
        try:
            got = parser.feed(piece)
        except StreamError as exc:
            if exc.condition not in STREAM_ERROR_CONDITIONS:
                raise AssertionError(f"not an RFC 6120 condition: {exc.condition}") from exc
            error = exc
            break
        fed += len(piece)
        if closed and got:
            raise AssertionError("events after StreamClosed")
        for ev in got:
            if isinstance(ev, ElementReceived) and ev.size > fed:
                raise AssertionError(f"element size {ev.size} > bytes fed {fed}")
            if isinstance(ev, StreamClosed):
                closed = True
        events += [_summary(e) for e in got]
    if error is not None:
        # Finding 1 (fuzz/README.md), fixed in xmlstream.py: the error raised is the error kept.
        try:
            parser.feed(b"<x/>")
        except StreamError as again:
            if id(again) != id(error):  # (not `is`: atheris rewrites comparisons)
                raise AssertionError("a second feed() after an error raised a different error") from again
        else:
            raise AssertionError("feed() after a StreamError did not raise")
        return events, error.condition
    return events, None


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 3)
    limits = (fdp.ConsumeIntInRange(64, 4096), fdp.ConsumeIntInRange(1, 20), fdp.ConsumeIntInRange(0, 20))
    ncuts = fdp.ConsumeIntInRange(0, 8)
    raw_cuts = [fdp.ConsumeIntInRange(0, 4096) for _ in range(ncuts)]
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    stream = (HEADER + body) if mode else body  # mostly past the header, where the stanzas are
    cuts = sorted({c % (len(stream) + 1) for c in raw_cuts})
    whole = _run(stream, [], limits)
    split = _run(stream, cuts, limits)
    # The same bytes in other pieces: the same events, or the same error. (Events completed in a feed() that
    # raises are discarded with it, so after an error only the condition is compared.)
    if (whole[1] is None) != (split[1] is None):
        # Size limits are checked per slice and per handler: a limit may trip at a different point. (With two
        # faults in the input, which one expat reports first may depend on the cuts: both are errors.)
        if "policy-violation" not in (whole[1], split[1]):
            raise AssertionError(f"split changed the outcome: {whole[1]} vs {split[1]} (cuts {cuts})")
        return
    if whole[1] is None and whole[0] != split[0]:
        raise AssertionError(f"split changed the events (cuts {cuts})")


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
