"""The one XML reader: a request body parsed once, guarded as it arrives, into a dict tree.

``BodyGuard`` runs an expat parser over each chunk as it arrives, so a body that is too large,
carries a DOCTYPE (and with it every entity trick: billion laughs, external entities) or a
processing instruction, or nests or counts elements beyond the caps, is refused before it is
whole, holding at most ``max_body_bytes`` of it. The same pass builds the accepted document's
dict tree (``DictBuilder``); ``parse_document`` does both for a body already in hand.

The tree is shaped as xmltodict's (``envelope.py`` reads it): an element is ``None`` when
empty, its text when it has only text, else a dict of ``@attribute`` values, ``#text`` and
child elements by parsed name, a list for a name that repeats, ``@xmlns`` for the namespaces
it declares. Text loses XML's white space around it, not all Python calls space (``POS-1``
with a no-break space is another id). Names are ``prefix:local`` under the fixed prefixes of
``namespaces.py``, ``{uri}local`` for other namespaces (xmltodict's ``uri:local`` would make
a namespace named ``sso`` the contract's).

expat, not lxml: libxml2 gives no DOCTYPE event while a body streams, calls a billion laughs
an amplification error, and takes UTF-7. (lxml building the tree behind this guard was tried:
walking its elements in Python cost what the callbacks saved, ``bench.soap_codec``.)
"""

from __future__ import annotations

import codecs
import pyexpat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

from app.errors import InvalidSoapEnvelope, PayloadTooLarge
from app.soap.media_type import declaration_head, declared_codec
from app.soap.namespaces import READ_PREFIXES
from app.soap.refusals import EnvelopeRefused

#: The oldest expat accepted: 2.4.1 added protection against entity amplification and 2.5.0
#: carries the memory-safety fixes of the 2.4 series (CVE-2022-40674, CVE-2022-43680).
MIN_EXPAT_VERSION: Final = (2, 5, 0)


@dataclass(frozen=True, slots=True)
class XmlLimits:
    """How much XML one request may carry."""

    max_body_bytes: int = 64 * 1024
    max_depth: int = 32
    max_elements: int = 2_000


def check_expat(version: tuple[int, int, int] = pyexpat.version_info) -> None:
    """Refuse to start with an expat older than ``MIN_EXPAT_VERSION``."""
    if version < MIN_EXPAT_VERSION:
        found = ".".join(map(str, version))
        wanted = ".".join(map(str, MIN_EXPAT_VERSION))
        raise RuntimeError(
            f"expat {found} is too old to parse partner XML safely; {wanted} or newer is needed"
        )


#: How much of a body without a charset is held back to read its XML declaration.
_HEAD_BYTES: Final = 256
#: The separator the guarding parser puts between a namespace URI and a local name.
SEPARATOR: Final = " "
_CDATA: Final = "#text"
#: What XML calls white space (str.strip() alone would also take U+00A0, U+3000 and more).
XML_SPACE: Final = " \t\r\n"
#: The known namespaces' parsed names, kept across requests: how many, and how long, at most.
_HOT_NAMES: dict[str, str] = {}
_MAX_HOT_NAMES: Final = 4_096
_MAX_SHARED_LOCAL: Final = 64
#: The longest namespace name a request may declare (each parsed name in it repeats it).
_MAX_NAMESPACE_URI: Final = 1_024


def _push(item: dict[str, Any] | None, key: str, data: Any) -> dict[str, Any]:
    if item is None:
        item = {}
    if key in item:
        value = item[key]
        if isinstance(value, list):
            value.append(data)
        else:
            item[key] = [value, data]
    else:
        item[key] = data
    return item


class DictBuilder:
    """expat handlers that build the document's dict tree.

    ``separator`` is the parser's namespace separator: names arrive as ``uri<sep>local``.
    """

    __slots__ = (
        "_data",
        "_declared",
        "_elements_left",
        "_item",
        "_max_depth",
        "_max_elements",
        "_max_uri",
        "_names",
        "_own",
        "_prefixes",
        "_separator",
        "_stack",
    )

    def __init__(
        self,
        separator: str = SEPARATOR,
        prefixes: Mapping[str, str] = READ_PREFIXES,
        limits: XmlLimits | None = None,
    ) -> None:
        """``limits``: the depth and element caps to refuse past (as ``_Refused``), if any."""
        self._separator = separator
        self._prefixes = prefixes
        self._max_depth = limits.max_depth if limits is not None else None
        self._max_elements = self._elements_left = limits.max_elements if limits else -1
        self._max_uri = _MAX_NAMESPACE_URI if limits is not None else None
        # expat name -> parsed name: on the hot path, the known namespaces' names are shared by
        # all documents; any other name is this document's own (``_own``) and dies with it.
        hot = separator == SEPARATOR and prefixes is READ_PREFIXES
        self._own: dict[str, str] = {}
        self._names: dict[str, str] = _HOT_NAMES if hot else self._own
        self._declared: dict[str, str] = {}
        self._stack: list[tuple[dict[str, Any] | None, list[str]]] = []
        self._item: dict[str, Any] | None = None
        self._data: list[str] = []

    @property
    def tree(self) -> dict[str, Any] | None:
        """``{root name: root element}`` once the root element has ended."""
        return self._item

    def _name(self, full_name: str) -> str:
        """The parsed name of an expat name not in ``_names`` (now kept)."""
        name = self._own.get(full_name)
        if name is not None:
            return name
        namespace, sep, local = full_name.rpartition(self._separator)
        short = self._prefixes.get(namespace) if sep else ""
        if short is None:  # a namespace of no fixed prefix: named by its URI, as Clark does
            name = f"{{{namespace}}}{local}" if namespace else local
            self._own[full_name] = name
            return name
        name = f"{short}:{local}" if short else (local if sep else full_name)
        names = self._names if len(local) <= _MAX_SHARED_LOCAL else self._own
        if len(names) >= _MAX_HOT_NAMES:
            names.clear()  # many names never seen before: start again
        names[full_name] = name
        return name

    def namespace_declared(self, prefix: str | None, uri: str | None) -> None:
        uri = uri or ""  # ``xmlns=""`` comes as None: the default namespace undeclared
        if self._max_uri is not None and len(uri) > self._max_uri:
            message = f"A namespace name is longer than {self._max_uri} characters."
            raise _Refused("namespace_too_long", message)
        self._declared[prefix or ""] = uri

    def start(self, full_name: str, attributes: dict[str, Any]) -> None:
        # The caps first: the stack holds one entry per open element.
        if self._max_depth is not None:
            if len(self._stack) >= self._max_depth:
                raise _Refused("too_deep", f"The XML nests deeper than {self._max_depth} elements.")
            self._elements_left -= 1
            if self._elements_left < 0:
                raise _Refused(
                    "too_many_elements", f"The XML has more than {self._max_elements} elements."
                )
        if self._declared:
            attributes = attributes or {}
            attributes["xmlns"] = self._declared
            self._declared = {}
        self._stack.append((self._item, self._data))
        names = self._names
        self._item = (
            {"@" + (names.get(key) or self._name(key)): value for key, value in attributes.items()}
            if attributes
            else None
        )
        self._data = []

    def end(self, full_name: str) -> None:
        data: str | None = "".join(self._data) if self._data else None
        item = self._item
        self._item, self._data = self._stack.pop()
        if data:
            data = data.strip(XML_SPACE) or None
        name = self._names.get(full_name) or self._name(full_name)
        if item is not None:
            if data:
                _push(item, _CDATA, data)
            self._item = _push(self._item, name, item)
        else:
            self._item = _push(self._item, name, data)

    def characters(self, data: str) -> None:
        self._data.append(data)


class _Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _refuse_doctype(*_args: object) -> NoReturn:
    raise _Refused("doctype", "A DOCTYPE is not allowed in a SOAP message.")


def _refuse_entity(*_args: object) -> NoReturn:
    raise _Refused("entity", "Entity declarations and references are not allowed.")


def _refuse_processing_instruction(*_args: object) -> NoReturn:
    raise _Refused(
        "processing_instruction", "Processing instructions are not allowed in a SOAP message."
    )


def harden(parser: pyexpat.XMLParserType) -> None:
    """Make an expat parser refuse DTDs, entities and processing instructions."""
    parser.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_entity
    parser.ProcessingInstructionHandler = _refuse_processing_instruction


def invalid_xml(message: str, **details: object) -> InvalidSoapEnvelope:
    """The error of a body that is not acceptable XML."""
    return InvalidSoapEnvelope(message, **details)


def bad_xml(error: Exception) -> InvalidSoapEnvelope:
    """The client error that says what a hardened parser found wrong (``error``: what it
    raised: a refusal, an expat error, or a declared encoding it will not read)."""
    if isinstance(error, _Refused):
        return invalid_xml(error.message, reason=error.reason)
    if isinstance(error, pyexpat.ExpatError):
        return invalid_xml(
            f"The body is not well-formed XML: {pyexpat.ErrorString(error.code)} "
            f"(line {error.lineno}, column {error.offset}).",
            reason="not_well_formed",
            line=error.lineno,
            column=error.offset,
        )
    # pyexpat's answer to an XML declaration naming an encoding it does not know
    # (LookupError) or will not take, such as UTF-7 (ValueError).
    return invalid_xml(
        "The XML declaration names an encoding this endpoint does not accept;"
        " send UTF-8 (or name the charset in the Content-Type).",
        reason="encoding",
    )


#: What a hardened parser raises for a body it does not accept (``bad_xml`` says why).
PARSE_ERRORS: Final = (_Refused, pyexpat.ExpatError, LookupError, ValueError)


@contextmanager
def refusing_bad_xml() -> Iterator[None]:
    """Turn what a hardened parser raises into the client error that says what was wrong."""
    try:
        yield
    except PARSE_ERRORS as error:
        raise bad_xml(error) from None


@dataclass(frozen=True, slots=True)
class Document:
    """An accepted request body: its bytes and the encoding to force when parsing them."""

    data: bytes
    encoding: str | None  # "UTF-8" when transcoded from a declared charset, else detect
    tree: dict[str, Any] | None = None  # the dict tree, when the guard has built it


@dataclass(slots=True)
class BodyGuard:
    """Receives a body chunk by chunk and refuses it as soon as it breaks a limit."""

    limits: XmlLimits
    charset: str | None = None  # a Python codec: the Content-Type's, or one its declaration names
    _received: int = field(default=0, init=False)
    _chunks: list[bytes] = field(default_factory=list, init=False)
    _decoder: codecs.IncrementalDecoder | None = field(default=None, init=False)
    _parser: pyexpat.XMLParserType = field(init=False)
    _builder: DictBuilder = field(init=False)
    _head: bytearray | None = field(init=False)

    def __post_init__(self) -> None:
        self._start()
        # Without a charset, the start of the body waits until its XML declaration is read.
        self._head = None if self.charset is not None else bytearray()

    def _start(self) -> None:
        if self.charset is not None:
            # utf-8-sig drops a byte order mark; the utf-16 codec consumes its own.
            codec = "utf-8-sig" if self.charset == "utf-8" else self.charset
            self._decoder = codecs.getincrementaldecoder(codec)("strict")
        self._parser = pyexpat.ParserCreate("UTF-8" if self.charset else None, SEPARATOR)
        harden(self._parser)
        self._parser.buffer_text = True
        # The builder refuses past the caps itself. It holds no reference back to the guard or
        # its parser, so a guard and its expat parser (about 20 KB with its text buffer) are
        # freed as soon as the request is done, not at the next run of the cyclic collector.
        self._builder = DictBuilder(limits=self.limits)
        self._parser.StartNamespaceDeclHandler = self._builder.namespace_declared
        self._parser.StartElementHandler = self._builder.start
        self._parser.EndElementHandler = self._builder.end
        self._parser.CharacterDataHandler = self._builder.characters

    def _declared(self, chunk: bytes, *, final: bool) -> bytes:
        """``chunk`` once the head is read (the whole head the first time), else nothing.

        A declaration (after a byte order mark too) naming an accepted encoding by a name expat
        does not know (windows-874, utf8) is decoded here; one not accepted is refused.
        """
        if self._head is None:
            return chunk
        self._head += chunk
        head = bytes(self._head)
        with refusing_bad_xml():  # a declared encoding outside the allow-list: LookupError
            text = declaration_head(head, whole=final or len(head) >= _HEAD_BYTES)
            if text is None:
                return b""  # a declaration has begun and is not whole yet
            self._head = None
            charset = declared_codec(text, head)
        if charset is not None:
            self.charset = charset
            self._start()
        return head

    def _parse(self, data: bytes, *, final: bool) -> None:
        try:
            self._parser.Parse(data, final)
        except PARSE_ERRORS as error:  # as refusing_bad_xml(), without a generator per call
            raise bad_xml(error) from None

    def _decode(self, chunk: bytes, *, final: bool) -> bytes:
        if self._decoder is None:
            return chunk
        try:
            return self._decoder.decode(chunk, final).encode("utf-8")
        except UnicodeError:  # UnicodeDecodeError, or utf-16 without a byte order mark
            raise invalid_xml(
                f"The body is not valid {self.charset}, the charset it was sent in.",
                reason="charset",
            ) from None

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk of the body."""
        self._received += len(chunk)
        if self._received > self.limits.max_body_bytes:
            raise body_too_large(self.limits.max_body_bytes)
        data = self._decode(self._declared(chunk, final=False), final=False)
        self._chunks.append(data)
        self._parse(data, final=False)

    def close(self) -> Document:
        """The whole body, once it has all arrived and is well-formed."""
        tail = self._decode(self._declared(b"", final=True), final=True)
        self._chunks.append(tail)
        self._parse(tail, final=True)
        return Document(
            b"".join(self._chunks), "UTF-8" if self.charset else None, self._builder.tree
        )


def parse_document(document: Document) -> dict[str, Any]:
    """The dict tree of a whole document: the guard's, or parsed now by a hardened parser."""
    if document.tree is not None:
        return document.tree
    # ":" as xmltodict's parser had it (the guard's " " also refuses URIs with spaces).
    parser = pyexpat.ParserCreate(document.encoding, ":")
    harden(parser)
    parser.buffer_text = True
    builder = DictBuilder(":")
    parser.StartNamespaceDeclHandler = builder.namespace_declared
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.characters
    with refusing_bad_xml():
        parser.Parse(document.data, True)
    tree = builder.tree
    assert tree is not None  # a well-formed document has a root element
    return tree


def body_too_large(limit: int) -> EnvelopeRefused:
    """The refusal of a body over the size cap (HTTP 413)."""
    return EnvelopeRefused(
        PayloadTooLarge(f"The request body is larger than {limit} bytes.", limit=limit),
        http_status=413,
    )
