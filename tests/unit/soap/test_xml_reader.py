"""The first XML defence: limits enforced while the body arrives, before it is whole."""

from __future__ import annotations

import pytest

from app.errors import InvalidSoapEnvelope
from app.soap import xml_reader
from app.soap.refusals import EnvelopeRefused
from app.soap.xml_reader import BodyGuard, XmlLimits, check_expat

SMALL = XmlLimits(max_body_bytes=1_000, max_depth=5, max_elements=20)


def _reason(data: bytes, *, charset: str | None = None, limits: XmlLimits = SMALL) -> str:
    guard = BodyGuard(limits, charset)
    with pytest.raises(InvalidSoapEnvelope) as refused:
        guard.feed(data)
        guard.close()
    return str(refused.value.details["reason"])


def test_a_body_over_the_cap_is_refused_at_the_chunk_that_crosses_it() -> None:
    guard = BodyGuard(SMALL)
    guard.feed(b"<a>" + b"x" * 600)
    with pytest.raises(EnvelopeRefused) as refused:
        guard.feed(b"x" * 600)  # 1203 bytes so far: the rest is never asked for
    assert refused.value.error.code == "client.payload_too_large"
    assert refused.value.http_status == 413


def test_a_body_of_exactly_the_cap_is_accepted() -> None:
    data = b"<a>" + b"x" * (SMALL.max_body_bytes - 7) + b"</a>"
    guard = BodyGuard(SMALL)
    guard.feed(data)
    assert guard.close().data == data


def test_a_doctype_is_refused_in_the_first_chunk() -> None:
    guard = BodyGuard(SMALL)
    with pytest.raises(InvalidSoapEnvelope) as refused:
        guard.feed(b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]>')
    assert refused.value.details["reason"] == "doctype"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<a>&undeclared;</a>", "not_well_formed"),
        (b'<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>', "doctype"),
        (b"<a><?php echo 1; ?></a>", "processing_instruction"),
        (b"<a><b></a>", "not_well_formed"),
        (b"", "not_well_formed"),
        (b"<a/><b/>", "not_well_formed"),
        (b'<p:a xmlns:q="urn:q"/>', "not_well_formed"),  # unbound prefix
        (b"<a>" * 6 + b"</a>" * 6, "too_deep"),
        (b"<a>" + b"<b/>" * 20 + b"</a>", "too_many_elements"),
    ],
)
def test_what_the_guard_refuses(data: bytes, reason: str) -> None:
    assert _reason(data) == reason


def test_a_namespace_name_over_1024_characters_is_refused() -> None:
    long_name = b'<p:a xmlns:p="urn:' + b"n" * 1_021 + b'"/>'
    assert _reason(long_name, limits=XmlLimits()) == "namespace_too_long"
    guard = BodyGuard(XmlLimits())
    guard.feed(b'<p:a xmlns:p="urn:' + b"n" * 1_020 + b'"/>')
    tree = guard.close().tree
    assert tree is not None and list(tree) == ["{urn:" + "n" * 1_020 + "}a"]


def test_only_the_known_namespaces_names_outlive_their_request() -> None:
    body = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:u="urn:odd">'
        b'<s:Body><u:x u:y="1"/><s:Header' + b"h" * 70 + b"/></s:Body></s:Envelope>"
    )
    guard = BodyGuard(XmlLimits())
    guard.feed(body)
    tree = guard.close().tree
    assert tree is not None
    body_element = tree["s11:Envelope"]["s11:Body"]
    assert body_element["{urn:odd}x"] == {"@{urn:odd}y": "1"}
    assert "s11:Header" + "h" * 70 in body_element
    kept = set(xml_reader._HOT_NAMES.values())
    assert "s11:Body" in kept
    assert not {"{urn:odd}x", "@{urn:odd}y", "{urn:odd}y", "s11:Header" + "h" * 70} & kept


def test_an_undeclared_default_namespace_names_elements_in_no_namespace() -> None:
    guard = BodyGuard(XmlLimits())
    guard.feed(b'<a xmlns="urn:x"><b xmlns="">1</b><c/></a>')
    tree = guard.close().tree
    assert tree is not None
    assert list(tree["{urn:x}a"]) == ["@xmlns", "b", "{urn:x}c"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<a>" * 6 + b"<?pi x?>", "too_deep"),
        (b"<a>" * 6 + b"</b>", "too_deep"),
        (b"<a><?pi x?>" + b"<a>" * 6, "processing_instruction"),
        (b"<a><b></a>" + b"<a>" * 6, "not_well_formed"),
        (b"<a><b>" + b"<c/>" * 19 + b"</a>", "too_many_elements"),
    ],
)
def test_the_first_problem_in_the_document_is_the_one_named(data: bytes, reason: str) -> None:
    assert _reason(data) == reason


def test_depth_and_count_at_the_caps_are_accepted() -> None:
    guard = BodyGuard(SMALL)
    guard.feed(b"<a>" * 5 + b"</a>" * 5 + b"")
    guard.close()
    guard = BodyGuard(SMALL)
    guard.feed(b"<a>" + b"<b/>" * 19 + b"</a>")
    guard.close()


def test_predefined_entities_and_character_references_still_work() -> None:
    guard = BodyGuard(SMALL)
    guard.feed(b"<a>&lt;&amp;&#3585;</a>")
    assert guard.close().data == b"<a>&lt;&amp;&#3585;</a>"


def test_a_utf8_byte_order_mark_is_tolerated_with_or_without_a_charset() -> None:
    for charset in (None, "utf-8"):
        guard = BodyGuard(SMALL, charset)
        guard.feed(b"\xef\xbb\xbf<a>\xe0\xb8\x81</a>")
        document = guard.close()
        assert document.data.endswith(b"<a>\xe0\xb8\x81</a>")


@pytest.mark.parametrize("charset", ["iso8859-1", "utf-16", "tis-620"])
def test_the_content_type_charset_decides_the_decoding(charset: str) -> None:
    text = "<a>ก</a>" if charset == "tis-620" else "<a>é</a>"
    # The declaration lies; the Content-Type charset wins (RFC 7303).
    raw = ('<?xml version="1.0" encoding="UTF-8"?>' + text).encode(charset)
    guard = BodyGuard(SMALL, charset)
    for i in range(0, len(raw), 3):  # a multi-byte character may straddle two chunks
        guard.feed(raw[i : i + 3])
    document = guard.close()
    assert document.encoding == "UTF-8"
    assert text.encode() in document.data


# Thai with the marks windows-874 adds to TIS-620: curly quotes, an ellipsis, a dash.
THAI_874 = "<a>“ลูกค้าขอยกเลิก”… – ครับ</a>"


@pytest.mark.parametrize("size", [1, 3, 7, 500])
def test_an_xml_declaration_of_windows_874_decides_the_decoding(size: int) -> None:
    raw = ('<?xml version="1.0" encoding="windows-874"?>' + THAI_874).encode("cp874")
    guard = BodyGuard(SMALL)
    for i in range(0, len(raw), size):  # the declaration itself may straddle chunks
        guard.feed(raw[i : i + size])
    document = guard.close()
    assert document.encoding == "UTF-8"
    assert THAI_874.encode() in document.data
    assert document.tree == {"a": "“ลูกค้าขอยกเลิก”… – ครับ"}


@pytest.mark.parametrize("size", [1, 3, 500])
@pytest.mark.parametrize(
    ("name", "codec"), [("utf8", "utf-8"), ("utf16", "utf-16"), ("UTF_16_BE", "utf-16-be")]
)
def test_an_alias_expat_does_not_know_is_decoded_here(size: int, name: str, codec: str) -> None:
    text = f"<?xml version='1.0' encoding='{name}'?>{THAI_874}"
    raw = ("\ufeff" + text).encode(codec) if codec == "utf-16-be" else text.encode(codec)
    guard = BodyGuard(SMALL)
    for i in range(0, len(raw), size):  # the byte order mark and declaration may straddle
        guard.feed(raw[i : i + size])
    document = guard.close()
    assert document.encoding == "UTF-8"
    assert document.tree == {"a": "“ลูกค้าขอยกเลิก”… – ครับ"}


def test_a_windows_874_body_that_is_not_windows_874_is_refused() -> None:
    raw = b'<?xml version="1.0" encoding="windows-874"?><a>\xdb</a>'  # unassigned in cp874
    assert _reason(raw) == "charset"


def test_a_tis_620_declaration_is_read_as_windows_874_and_others_are_refused() -> None:
    raw = '<?xml version="1.0" encoding="TIS-620"?><a>สมชาย…–1</a>'.encode("cp874")
    guard = BodyGuard(SMALL)
    guard.feed(raw)
    document = guard.close()
    assert document.tree == {"a": "สมชาย…–1"}  # the ellipsis and dash of the Windows code page
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><a>é</a>'.encode("latin-1")
    guard = BodyGuard(SMALL)
    guard.feed(latin)
    document = guard.close()
    assert document.encoding is None and document.data == latin  # expat reads it itself
    assert document.tree == {"a": "é"}
    for name in (b"klingon", b"koi8-r", b"windows-1252"):
        assert _reason(b'<?xml version="1.0" encoding="' + name + b'"?><a/>') == "encoding"


def test_bytes_that_are_not_in_the_declared_charset_are_refused() -> None:
    assert _reason(b"<a>\xff\xfe\xfd</a>", charset="utf-8") == "charset"


def test_expat_too_old_refuses_to_start() -> None:
    check_expat((2, 6, 0))
    with pytest.raises(RuntimeError, match=r"expat 2\.4\.0 is too old"):
        check_expat((2, 4, 0))
