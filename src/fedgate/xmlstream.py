"""The one sans-IO XML stream parser and serialiser (RFC 6120 section 11, restricted XML).

No sockets, no clock, no asyncio: :class:`XmlStreamParser` takes bytes and gives events, the serialising
functions give bytes. The parser is stdlib expat with namespace processing; everything RFC 6120 forbids
(DOCTYPE and so entity declarations, comments, processing instructions, references to entities other than
the five predefined ones, a declared encoding other than UTF-8) ends the stream with a :class:`StreamError`.

Decisions, so that callers can rely on them:

* A ``stream:stream`` element as a first-level child (a restart the peer thinks happened) is ``invalid-xml``;
  deeper inside a stanza it is just an odd payload element.
* Text is UTF-8 only: a declared encoding other than UTF-8 is ``unsupported-encoding``; invalid UTF-8, NUL,
  control characters and U+FFFE/U+FFFF are ``not-well-formed`` (expat rejects them, raw or as references).
* Errors map as: unbound or reserved prefix ``bad-namespace-prefix``; DOCTYPE (so also any entity
  declaration, before any expansion), comment, processing instruction, undefined or external entity
  ``restricted-xml``; a root element other than ``{http://etherx.jabber.org/streams}stream``
  ``invalid-namespace``; limits ``policy-violation``; any other expat error ``not-well-formed``.
* Character data other than whitespace between first-level elements is ``bad-format``; whitespace there
  (keep-alives) is ignored and gives no event.
* ``max_depth`` counts nesting inside one first-level element: the stanza itself is depth 1.
* ``max_stanza_size`` bounds every first-level element and also the stream header and anything pending
  between elements (a start tag never finished); it is checked in the handlers and after every slice of at
  most 64 KiB of input, so memory held stays below the limit plus one slice.
* After :class:`StreamClosed`, ``feed()`` ignores all further data and returns ``[]``. After a
  :class:`StreamError`, every further ``feed()`` raises that same error again. ``reset()`` starts afresh.
* Events parsed earlier in the same ``feed()`` call that raises are discarded with the stream.
* Bytes after an element that calls for a restart (``<proceed/>``, ``<success/>``) in the same ``feed()``
  are parsed as part of the old stream: XMPP peers wait for the restart, so none are expected.
* With expat >= 2.6, reparse deferral is switched off: a complete stanza must never wait for more input.
  The cost it guards against (re-scanning a huge unfinished token) is bounded by ``max_stanza_size``.
* ``ElementReceived.size`` is exact: from the element's ``<`` to the ``>`` that ends it.
* :meth:`XmlStreamParser.hibernate` (after Erlang's ``hibernate``) frees the expat parser of a stream that is
  idle between first-level elements; the next :meth:`~XmlStreamParser.feed` builds a new one and replays the
  stream's own start tag into it (no event), so namespaces, the stream prefix and every limit hold as before.
  An idle authenticated stream then holds some 250 bytes of header instead of about 13 kB of expat state.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement
from xml.parsers import expat

from fedgate.errors import STREAM_ERROR_CONDITIONS, StreamError

__all__ = [
    "STREAMS_ERROR_NS",
    "STREAM_CLOSE",
    "STREAM_NS",
    "XML_NS",
    "ElementReceived",
    "StreamClosed",
    "StreamOpened",
    "XmlEvent",
    "XmlStreamParser",
    "escape_attr",
    "escape_text",
    "rename_namespace",
    "serialize",
    "stream_error",
    "stream_header",
]

STREAM_NS = "http://etherx.jabber.org/streams"
STREAMS_ERROR_NS = "urn:ietf:params:xml:ns:xmpp-streams"
XML_NS = "http://www.w3.org/XML/1998/namespace"
STREAM_CLOSE: bytes = b"</stream:stream>"

_STREAM_TAG = "{" + STREAM_NS + "}stream"
_XML_LANG = "{" + XML_NS + "}lang"
_SEP = " "  # cannot occur in a namespace name (a URI) nor in a local name
_SLICE = 65536
_WS = b" \t\r\n"
_NOT_UTF8_START = frozenset(b"\x00\xfe\xff")  # UTF-16/32 byte order marks, or UTF-16/32 '<' without one
_NAME_CACHE_MAX = 4096
# One tag from '<' to its '>': quotes only occur around attribute values, which may contain '>'.
_TAG_RE = re.compile(rb"<[^'\">]*(?:(?:'[^']*'|\"[^\"]*\")[^'\">]*)*>")


@dataclass(frozen=True)
class StreamOpened:
    """The ``<stream:stream>`` open tag was received."""

    attrs: dict[str, str]
    default_ns: str
    prefixes: dict[str, str]


@dataclass(frozen=True)
class ElementReceived:
    """One complete first-level child of the stream (stanza, features, starttls, db:result, ...)."""

    element: Element
    size: int


@dataclass(frozen=True)
class StreamClosed:
    """``</stream:stream>`` was received."""


XmlEvent = StreamOpened | ElementReceived | StreamClosed


def _expat_condition(code: int | None) -> str:
    errors = expat.errors
    if code == errors.codes[errors.XML_ERROR_UNBOUND_PREFIX]:
        return "bad-namespace-prefix"
    if code in _PREFIX_ERRORS:
        return "bad-namespace-prefix"
    if code in _RESTRICTED_ERRORS:
        return "restricted-xml"
    if (
        code == errors.codes[errors.XML_ERROR_UNKNOWN_ENCODING]
        or code == errors.codes[errors.XML_ERROR_INCORRECT_ENCODING]
    ):
        return "unsupported-encoding"
    return "not-well-formed"


def _codes(*names: str) -> frozenset[int]:
    return frozenset(expat.errors.codes[getattr(expat.errors, n)] for n in names if hasattr(expat.errors, n))


_PREFIX_ERRORS = _codes(
    "XML_ERROR_UNDECLARING_PREFIX",
    "XML_ERROR_RESERVED_PREFIX_XML",
    "XML_ERROR_RESERVED_PREFIX_XMLNS",
    "XML_ERROR_RESERVED_NAMESPACE_URI",
)
_RESTRICTED_ERRORS = _codes(
    "XML_ERROR_UNDEFINED_ENTITY",
    "XML_ERROR_EXTERNAL_ENTITY_HANDLING",
    "XML_ERROR_ENTITY_DECLARED_IN_PE",
    "XML_ERROR_RECURSIVE_ENTITY_REF",
    "XML_ERROR_BINARY_ENTITY_REF",
    "XML_ERROR_ASYNC_ENTITY",
    "XML_ERROR_PARAM_ENTITY_REF",
)


def _forbidden(what: str) -> Callable[..., None]:
    def handler(*args: object) -> None:
        raise StreamError("restricted-xml", f"{what} is not allowed in XMPP (RFC 6120 section 11.1)")

    return handler


# Made once: every stream (and every restart after STARTTLS or SASL) installs them on a fresh expat parser.
_FORBIDDEN = {
    what: _forbidden(what)
    for what in ("DOCTYPE", "entity declaration", "notation declaration", "comment", "processing instruction",
                 "entity reference")
}


TEXT_BUFFER_SIZE = 2048
# Expanded names ("ns local" -> "{ns}local"), shared by every stream: XMPP uses few, and one dict per stream
# cost about 1 kB each. Cleared when full, so a peer inventing names cannot grow it.
_NAMES: dict[str, str] = {}


class XmlStreamParser:
    """Bytes of one XMPP stream in, :data:`XmlEvent` list out. See the module docstring for the rules."""

    def __init__(self, *, max_stanza_size: int = 262144, max_depth: int = 100, max_attributes: int = 100) -> None:
        if max_stanza_size < 1 or max_depth < 1 or max_attributes < 0:
            raise ValueError("limits must be positive")
        self.max_stanza_size = max_stanza_size
        self.max_depth = max_depth
        self.max_attributes = max_attributes
        self._names = _NAMES
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next bytes are a new stream (after STARTTLS or SASL success)."""
        self._p: expat.XMLParserType | None = self._new_expat()
        self._events: list[XmlEvent] = []
        self._stack: list[Element] = []  # open elements below the stream element
        self._depth = 0  # open elements including the stream element
        self._decls: dict[str | None, str] = {}
        self._buf = bytearray()  # fed bytes from stream offset self._base on
        self._base = 0
        self._total = 0  # bytes fed since the stream started
        self._mark = 0  # where the current first-level element (or the idle gap before it) began
        self._closed = False
        self._error: StreamError | None = None
        self._header: bytes | None = None  # the stream's start tag as received, replayed after hibernate()
        self._shift = 0  # stream offset of expat's byte 0 (a woken parser counts from the replayed header)
        self._waking = False

    def hibernate(self) -> bool:
        """Free the expat parser while the stream is idle between first-level elements.

        Returns False, and changes nothing, anywhere else: before the header, inside an element, with bytes of
        an unfinished one pending, after the close or an error. The next :meth:`feed` wakes the parser.
        """
        p = self._p
        if (p is None or self._error is not None or self._closed or self._depth != 1 or self._stack
                or self._mark != self._total or self._events or self._header is None):
            return False
        p.CharacterDataHandler = None  # flushes buffered keep-alive whitespace, which _chars ignores here
        self._p = None  # the parser's only reference: freed now, and the handler cycle with it
        return True

    @property
    def hibernating(self) -> bool:
        return self._p is None and self._header is not None and self._error is None and not self._closed

    def _wake(self) -> expat.XMLParserType:
        assert self._header is not None
        p = self._new_expat()
        p.StartNamespaceDeclHandler = None  # the header's declarations were reported when it first came
        self._depth = 0  # the replayed start tag opens the stream element again
        self._waking = True
        try:
            p.Parse(self._header, False)
        finally:
            self._waking = False
        self._shift = self._total - len(self._header)
        self._p = p
        return p

    def _new_expat(self) -> expat.XMLParserType:
        p = expat.ParserCreate("UTF-8", _SEP)
        p.buffer_text = True
        # expat's default text buffer is 8 KiB for every stream, idle ones included; text longer than this
        # arrives in pieces that _chars joins. Most stanza text is far shorter.
        p.buffer_size = TEXT_BUFFER_SIZE
        p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        if hasattr(p, "SetReparseDeferralEnabled"):  # expat >= 2.6: a finished stanza must never wait for more
            p.SetReparseDeferralEnabled(False)
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        p.CharacterDataHandler = self._chars
        p.StartNamespaceDeclHandler = self._ns_decl
        p.XmlDeclHandler = self._xml_decl
        p.StartDoctypeDeclHandler = _FORBIDDEN["DOCTYPE"]
        p.EntityDeclHandler = _FORBIDDEN["entity declaration"]
        p.UnparsedEntityDeclHandler = _FORBIDDEN["entity declaration"]
        p.NotationDeclHandler = _FORBIDDEN["notation declaration"]
        p.CommentHandler = _FORBIDDEN["comment"]
        p.ProcessingInstructionHandler = _FORBIDDEN["processing instruction"]
        p.ExternalEntityRefHandler = self._external_entity
        p.SkippedEntityHandler = _FORBIDDEN["entity reference"]
        p.DefaultHandler = None
        return p

    @property
    def closed(self) -> bool:
        """Whether ``</stream:stream>`` has been received (or the parser released)."""
        return self._closed

    def release(self) -> None:
        """The stream is over: free the expat parser and what is buffered now; ``feed()`` then ignores input.

        Without this, an unfinished stream (a peer that just disconnects) is freed only by the cyclic garbage
        collector, since expat's handlers are this object's methods: under a flood of such connections their
        buffers pile up between collections.
        """
        self._p = None
        self._closed = True
        self._error = None  # its traceback holds feed()'s frame, and so this object
        self._buf = bytearray()
        self._stack = []
        self._events = []

    def feed(self, data: bytes) -> list[XmlEvent]:
        """Parse more bytes; return the events they complete. Raises :class:`StreamError`."""
        if self._error is not None:
            raise self._error
        if self._closed or not data:
            return []
        try:
            if self._total < 2 and not _NOT_UTF8_START.isdisjoint(data[: 2 - self._total]):
                # expat detects UTF-16 (byte order mark, or "<\0") even when told the input is UTF-8
                raise StreamError("unsupported-encoding", "XMPP streams are UTF-8")
            parser = self._p if self._p is not None else self._wake()
            for i in range(0, len(data), _SLICE):
                chunk = data[i : i + _SLICE] if len(data) > _SLICE else data
                self._buf += chunk
                self._total += len(chunk)
                try:
                    parser.Parse(chunk, False)
                except expat.ExpatError as exc:
                    if self._closed:  # bytes after </stream:stream>: not ours to judge
                        break
                    raise StreamError(_expat_condition(exc.code), str(exc)) from None
                if self._closed:
                    break
                self._after_slice()
            if self._closed:
                self._p = None  # nothing more to parse: free it now (see release())
        except StreamError as exc:
            self._fail(exc)
            raise
        events, self._events = self._events, []
        return events

    # -- internals -------------------------------------------------------------------------------------

    def _fail(self, exc: StreamError) -> None:
        self._error = exc
        self._events = []
        self._buf = bytearray()
        # Drop the expat parser (feed() holds it until it returns): freeing it flushes no buffered text through
        # a handler, so nothing runs again for this stream, and it breaks the cycle through its handlers.
        self._p = None

    def _after_slice(self) -> None:
        if self._depth == 1:
            residue = self._buf[self._mark - self._base :]
            if not residue.strip(_WS):  # only keep-alive whitespace since the last element: consumed
                self._mark = self._total
        if self._total - self._mark > self.max_stanza_size:
            raise StreamError("policy-violation", f"element larger than {self.max_stanza_size} bytes")
        keep = self._mark - self._base
        if keep > 0:
            del self._buf[:keep]
            self._base = self._mark

    def _index(self) -> int:
        """Stream offset of the event expat is reporting."""
        p = self._p
        assert p is not None
        return p.CurrentByteIndex + self._shift

    def _tag_end(self, start: int) -> int:
        """Stream offset just after the tag that begins at stream offset ``start``."""
        m = _TAG_RE.match(self._buf, start - self._base)
        if m is None:  # pragma: no cover - expat only reports complete tags
            raise StreamError("internal-server-error", "tag not found in buffer")
        return self._base + m.end()

    def _name(self, name: str) -> str:
        clark = self._names.get(name)
        if clark is None:
            ns, sep, local = name.partition(_SEP)
            clark = "{" + ns + "}" + local if sep else name
            if len(self._names) >= _NAME_CACHE_MAX:
                self._names.clear()
            self._names[name] = clark
        return clark

    def _attrs(self, attrs: dict[str, str]) -> dict[str, str]:
        if not attrs:
            return attrs
        if len(attrs) > self.max_attributes:
            raise StreamError("policy-violation", f"more than {self.max_attributes} attributes")
        for key in attrs:
            if _SEP in key:
                return {self._name(k): v for k, v in attrs.items()}
        return attrs

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        depth = self._depth
        tag = self._names.get(name) or self._name(name)
        if depth >= 2:
            if depth > self.max_depth:
                raise StreamError("policy-violation", f"nested deeper than {self.max_depth}")
            if self._index() - self._mark > self.max_stanza_size:
                raise StreamError("policy-violation", f"element larger than {self.max_stanza_size} bytes")
            self._stack.append(SubElement(self._stack[-1], tag, self._attrs(attrs)))
        elif depth == 1:
            if tag == _STREAM_TAG:
                raise StreamError("invalid-xml", "stream header inside the stream")
            self._mark = self._index()
            self._stack.append(Element(tag, self._attrs(attrs)))
        elif not self._waking:
            self._open_stream(tag, attrs)
        self._depth = depth + 1

    def _open_stream(self, tag: str, attrs: dict[str, str]) -> None:
        if tag != _STREAM_TAG:
            raise StreamError("invalid-namespace", f"root element is {tag}, not stream:stream")
        plain = {}
        for k, v in self._attrs(attrs).items():
            plain["xml:lang" if k == _XML_LANG else k] = v
        decls = self._decls
        prefixes = {k: v for k, v in decls.items() if k is not None}
        self._decls = {}
        p = self._p
        assert p is not None
        p.StartNamespaceDeclHandler = None  # only the header's declarations are reported
        start = p.CurrentByteIndex
        self._mark = self._tag_end(start)
        self._header = bytes(self._buf[start - self._base : self._mark - self._base])
        self._events.append(StreamOpened(plain, decls.get(None, ""), prefixes))

    def _end(self, name: str) -> None:
        depth = self._depth - 1
        self._depth = depth
        if depth >= 2:
            self._stack.pop()
        elif depth == 1:
            element = self._stack.pop()
            end = -1
            if not len(element) and element.text is None:  # perhaps "<x/>", where expat points is unreliable
                end = self._tag_end(self._mark)
                if self._buf[end - self._base - 2] != 0x2F:  # no: "<x></x>"
                    end = -1
            if end < 0:
                end = self._tag_end(self._index())
            size = end - self._mark
            if size > self.max_stanza_size:
                raise StreamError("policy-violation", f"element larger than {self.max_stanza_size} bytes")
            self._mark = end
            self._events.append(ElementReceived(element, size))
        else:
            self._closed = True
            self._events.append(StreamClosed())

    def _chars(self, data: str) -> None:
        stack = self._stack
        if stack:
            el = stack[-1]
            if len(el):
                child = el[-1]
                child.tail = data if child.tail is None else child.tail + data
            else:
                el.text = data if el.text is None else el.text + data
        elif self._depth == 1 and data.strip(" \t\r\n"):
            raise StreamError("bad-format", "character data between first-level elements")
        # Outside the stream element expat itself reports any such text as not well-formed.

    def _ns_decl(self, prefix: str | None, uri: str | None) -> None:
        self._decls[prefix] = uri or ""

    def _xml_decl(self, version: str | None, encoding: str | None, standalone: int) -> None:
        if encoding is not None and encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
            raise StreamError("unsupported-encoding", f"encoding {encoding!r}; XMPP is UTF-8")

    @staticmethod
    def _external_entity(context: str, base: str | None, system_id: str | None, public_id: str | None) -> int:
        raise StreamError("restricted-xml", "external entity reference is not allowed in XMPP")



# -- serialising ---------------------------------------------------------------------------------------

# XML 1.0 Char minus what cannot be written at all; \t \n \r are written as character references.
_BAD_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _check(s: str) -> None:
    m = _BAD_CHARS.search(s)
    if m is not None:
        raise ValueError(f"character U+{ord(m.group()):04X} cannot be written in XML 1.0")


_TEXT_REFS = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;"))
_ATTR_REFS = (*_TEXT_REFS, ('"', "&quot;"), ("'", "&apos;"), ("\n", "&#10;"), ("\t", "&#9;"))


# Anything escaping has to look at (a reference to write, or a character to refuse): most values have none, and
# one scan in C then proves the value can be written as it is (the stanza path serialises every attribute).
_TEXT_WORK = re.compile("[&<>\r]|" + _BAD_CHARS.pattern[1:-1].join("[]"))
_ATTR_WORK = re.compile("[&<>\r\"'\n\t]|" + _BAD_CHARS.pattern[1:-1].join("[]"))


def _escape(s: str, refs: tuple[tuple[str, str], ...]) -> str:
    _check(s)
    for char, ref in refs:
        if char in s:
            s = s.replace(char, ref)
    return s


def escape_text(s: str) -> str:
    """Character data that no parser can read as markup (``\\r`` kept as a reference so it survives)."""
    if _TEXT_WORK.search(s) is None:
        return s
    return _escape(s, _TEXT_REFS)


def escape_attr(s: str) -> str:
    """An attribute value safe in either quote; whitespace as references so normalisation keeps it."""
    if _ATTR_WORK.search(s) is None:
        return s
    return _escape(s, _ATTR_REFS)


_SPLIT: dict[str, tuple[str, str]] = {}


def _split(tag: str) -> tuple[str, str]:
    split = _SPLIT.get(tag)
    if split is None:
        if tag[:1] == "{":
            ns, _, local = tag[1:].partition("}")
            split = ns, local
        else:
            split = "", tag
        if len(_SPLIT) >= _NAME_CACHE_MAX:  # names are few; a peer making up new ones must not grow this
            _SPLIT.clear()
        _SPLIT[tag] = split
    return split


class _Writer:
    def __init__(self, prefixes: dict[str, str]) -> None:
        self.by_ns = {ns: p for p, ns in prefixes.items()}
        self.out: list[str] = []

    def write(self, el: Element, default_ns: str, head: str = "") -> None:
        out = self.out
        tag = el.tag
        if not isinstance(tag, str):
            raise TypeError(f"cannot serialise {tag!r} (comments and processing instructions are not XMPP)")
        ns, local = _split(tag)
        if ns == default_ns:
            qname = local
        elif ns in self.by_ns:
            qname = self.by_ns[ns] + ":" + local
        else:
            qname = local
            default_ns = ns
            head += " xmlns='" + escape_attr(ns) + "'"
        out.append("<" + qname + head)
        extra = 0
        for key, value in el.items():
            if key[:1] == "{":
                ans, alocal = _split(key)
                if ans == XML_NS:
                    name = "xml:" + alocal
                elif ans in self.by_ns:
                    name = self.by_ns[ans] + ":" + alocal
                else:
                    extra += 1
                    name = f"ns{extra}:{alocal}"
                    out.append(f" xmlns:ns{extra}='{escape_attr(ans)}'")
            else:
                name = key
            out.append(" " + name + "='" + escape_attr(value) + "'")
        text = el.text
        if not len(el) and not text:
            out.append("/>")
            return
        out.append(">")
        if text:
            out.append(escape_text(text))
        for child in el:
            self.write(child, default_ns)
            if child.tail:
                out.append(escape_text(child.tail))
        out.append("</" + qname + ">")


def serialize(
    element: Element, *, default_ns: str, prefixes: dict[str, str] | None = None, declare_prefixes: bool = False
) -> bytes:
    """One first-level element as bytes for a stream whose default namespace is ``default_ns``.

    Elements in ``default_ns`` are unprefixed; elements in a namespace that has a prefix in ``prefixes``
    (``{'db': 'jabber:server:dialback'}``) use it, and the prefix is taken as declared on the stream header
    unless ``declare_prefixes`` asks for ``xmlns:prefix`` on this element; any other namespace gets a local
    ``xmlns='...'`` where it changes. The element's own ``tail`` is not written.
    """
    prefixes = prefixes or {}
    head = ""
    if declare_prefixes:
        head = "".join(f" xmlns:{p}='{escape_attr(ns)}'" for p, ns in prefixes.items())
    w = _Writer(prefixes)
    w.write(element, default_ns, head)
    return "".join(w.out).encode("utf-8")


def stream_header(
    *,
    default_ns: str,
    to: str | None,
    from_: str | None,
    id: str | None = None,
    version: str | None = "1.0",
    extra_ns: dict[str, str] | None = None,
    lang: str | None = None,
) -> bytes:
    """``<?xml version='1.0'?><stream:stream xmlns=... xmlns:stream=... [xmlns:p=...] to= from= id= ...>``."""
    parts = ["<?xml version='1.0'?><stream:stream xmlns='", escape_attr(default_ns), "' xmlns:stream='", STREAM_NS, "'"]
    for prefix, ns in (extra_ns or {}).items():
        parts.append(f" xmlns:{prefix}='{escape_attr(ns)}'")
    for name, value in (("to", to), ("from", from_), ("id", id), ("version", version), ("xml:lang", lang)):
        if value is not None:
            parts.append(f" {name}='{escape_attr(value)}'")
    parts.append(">")
    return "".join(parts).encode("utf-8")


def stream_error(condition: str, text: str | None = None, app: bytes = b"") -> bytes:
    """``<stream:error><CONDITION xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>[<text>..</text>]</stream:error>``,
    with ``app`` (an application-specific condition, serialised, RFC 6120 4.9.4) last."""
    if condition not in STREAM_ERROR_CONDITIONS:
        raise ValueError(f"not an RFC 6120 stream error condition: {condition}")
    body = f"<{condition} xmlns='{STREAMS_ERROR_NS}'/>"
    if text:
        body += f"<text xmlns='{STREAMS_ERROR_NS}'>{escape_text(text)}</text>"
    return f"<stream:error>{body}".encode() + app + b"</stream:error>"


def rename_namespace(element: Element, old: str, new: str) -> Element:
    """Move ``element`` and its descendants that are in namespace ``old`` into ``new``, in place.

    Descendants in other namespaces (and their subtrees) keep theirs. Returns ``element``.
    """
    prefix = "{" + old + "}"
    replacement = "{" + new + "}"
    n = len(prefix)
    todo = [element]
    while todo:
        el = todo.pop()
        tag = el.tag
        if isinstance(tag, str) and tag.startswith(prefix):
            el.tag = replacement + tag[n:]
            todo.extend(el)
    return element
