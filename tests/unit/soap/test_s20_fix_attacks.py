"""Attacks on session 20's fix of XML declarations (s20e): ``media_type.declared_codec`` /
``declaration_head`` and ``xml_reader.BodyGuard._declared``.

Every test here fails on the code it was written against, for the defect its docstring names.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from app.errors import InvalidSoapEnvelope
from app.soap.xml_reader import BodyGuard, XmlLimits

ENVELOPE = (
    "<e:Envelope xmlns:e='http://schemas.xmlsoap.org/soap/envelope/'>"
    "<e:Body><x>{text}</x></e:Body></e:Envelope>"
)


def _read(data: bytes, *, pieces: list[int] | None = None) -> dict[str, object]:
    """``data`` fed to a guard as a ``text/xml`` body without charset, in reads of ``pieces``
    bytes (then the rest), and closed: the dict tree."""
    guard = BodyGuard(XmlLimits())
    at = 0
    for size in pieces or []:
        guard.feed(data[at : at + size])
        at += size
    guard.feed(data[at:])
    tree = guard.close().tree
    assert tree is not None
    return tree


def _refusal(data: bytes, *, pieces: list[int] | None = None) -> str | None:
    """The reason ``data`` is refused for, or None when it is read."""
    try:
        _read(data, pieces=pieces)
    except InvalidSoapEnvelope as refused:
        return str(refused.details.get("reason"))
    return None


# Names of encodings outside the allow-list (KOI8-R, windows-1251, ISO-8859-5, Mac Roman)
# that Python's codec registry still resolves: it folds every run of punctuation to one "_".
_LONG_NAMES = [
    ("koi8" + "-" * 40 + "r", "koi8-r", "\u0416"),
    ("windows" + "-" * 40 + "1251", "cp1251", "\u0416"),
    ("iso" + "-" * 40 + "8859-5", "iso8859-5", "\u0416"),
    ("mac" + "_" * 40 + "roman", "mac-roman", "x"),
]


@pytest.mark.parametrize(("name", "codec", "text"), _LONG_NAMES, ids=[n[1] for n in _LONG_NAMES])
def test_an_encoding_outside_the_allow_list_is_refused_however_long_its_declared_name(
    name: str, codec: str, text: str
) -> None:
    """Defect: the allow-list of declared encodings (UTF-8, UTF-16, ASCII, Latin-1, TIS-620,
    windows-874; "Python knows codecs ... only these are accepted", ``media_type._CHARSETS``)
    is bypassed by a declared name longer than 40 characters. ``media_type._DECLARED`` only
    matches names of up to 40 characters, so ``declared_codec`` returns None ("no
    declaration") for ``encoding="koi8----...----r"``, the body goes to expat undecoded, and
    pyexpat's unknown-encoding fallback hands the name to Python's codec registry, which
    folds the punctuation (``koi8_r``) and reads the body as KOI8-R (or windows-1251,
    ISO-8859-5, Mac Roman: any single-byte codec). The same declaration with the short name
    ``koi8-r`` is refused with reason ``encoding``.
    Correct: a declaration whose encoding is not on the allow-list is refused whatever the
    length of its name (match the name unbounded, or refuse a declaration whose name the
    gateway could not read)."""
    decl = f"<?xml version='1.0' encoding='{name}'?>"
    body = decl.encode("ascii") + ENVELOPE.format(text=text).encode(codec)
    short = f"<?xml version='1.0' encoding='{codec}'?>".encode("ascii")
    assert _refusal(short + ENVELOPE.format(text=text).encode(codec)) == "encoding"
    assert _refusal(body) == "encoding"


def test_a_declared_encoding_is_checked_however_the_body_is_split() -> None:
    """Defect: whether a body's declared encoding is checked depends on how the body is cut
    into reads. ``BodyGuard._declared`` waits for the declaration only until 256 bytes
    (``_HEAD_BYTES``) have arrived; a declaration whose ``encoding`` comes later (white space
    between pseudo-attributes is unbounded in XML) is then handed to expat unchecked when the
    first read was short, and expat reads it through pyexpat's fallback (KOI8-R here). The
    very same bytes in one read are refused with reason ``encoding``. A client controls how
    its body is split (small TCP writes), so the allow-list is no allow-list.
    Correct: the declared encoding is checked on every path (refuse a declaration whose end
    has not come within the head bound), and the answer does not depend on the split."""
    decl = "<?xml version='1.0'" + " " * 300 + "encoding='koi8-r'?>"
    body = decl.encode("ascii") + ENVELOPE.format(text="\u0416").encode("koi8-r")
    assert _refusal(body) == "encoding"
    assert _refusal(body, pieces=[100, 100, 100]) == "encoding"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf_16_le"])
def test_utf16_without_a_byte_order_mark_declared_by_its_python_name_is_read(
    encoding: str,
) -> None:
    """Defect: ``ET.tostring(root, encoding="utf-16-le")`` (what a partner's Python client
    writes: UTF-16LE without a byte order mark, declared ``encoding='utf-16-le'``) is refused
    with reason ``encoding``, "names an encoding this endpoint does not accept", though
    ``utf-16-le`` is on the allow-list (``codec_of`` takes it; the same body with a BOM, or
    with ``charset=utf-16-le`` in the Content-Type, is read). ``declaration_head`` finds a
    declaration only in ASCII or after a BOM, not in BOM-less UTF-16 (``3C 00 3F 00``,
    XML 1.0 Appendix F), so ``declared_codec`` never sees it and leaves the alias to expat,
    which does not know it (the defect session 20 fixed for ``utf8`` after a BOM).
    Correct: a declaration in BOM-less UTF-16 is read too, and an accepted encoding declared
    by any of its names is read: the envelope's Thai text arrives intact."""
    data = ET.tostring(ET.fromstring(ENVELOPE.format(text="ไทย")), encoding=encoding)
    assert data.startswith(f"<?xml version='1.0' encoding='{encoding}'?>".encode(encoding))
    tree = _read(data)
    assert tree["s11:Envelope"]["s11:Body"] == {"x": "ไทย"}  # type: ignore[index]
