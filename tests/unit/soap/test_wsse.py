"""The UsernameToken taken from the wsse:Security header, as the client wrote it."""

from __future__ import annotations

import pytest

from app.admission.credentials import MalformedToken, PasswordType, UsernameToken
from app.soap.envelope import parse_envelope
from app.soap.versions import SoapVersion
from app.soap.wsse import read_username_token
from app.soap.xml_reader import Document
from tests.unit.soap.envelopes import (
    CREATED,
    NONCE,
    PROFILE,
    SOAP11,
    WSSE,
    WSU,
    digest_token,
    envelope,
    inquire,
    text_token,
)
from tests.unit.soap.fake_counter import PASSWORD, USERNAME, digest


def _token(header: str) -> UsernameToken | MalformedToken | None:
    data = envelope(inquire(), header=header)
    return read_username_token(parse_envelope(Document(data, None), expected=SoapVersion.V11))


def _security(token_fields: str, attributes: str = "") -> str:
    return (
        f'<w:Security xmlns:w="{WSSE}" xmlns:u="{WSU}" xmlns:e="{SOAP11}" {attributes}>'
        f"<w:UsernameToken>{token_fields}</w:UsernameToken></w:Security>"
    )


def test_a_digest_token_is_extracted_exactly() -> None:
    assert _token(digest_token()) == UsernameToken(
        username=USERNAME,
        password=digest(NONCE, CREATED, PASSWORD),
        password_type=PasswordType.DIGEST,
        nonce_b64=NONCE,
        created=CREATED,
    )


def test_a_text_token() -> None:
    assert _token(text_token()) == UsernameToken(USERNAME, PASSWORD, PasswordType.TEXT)


def test_a_password_without_type_is_password_text() -> None:
    token = _token(_security("<w:Username>u</w:Username><w:Password>p</w:Password>"))
    assert token is not None and token.password_type is PasswordType.TEXT


def test_no_security_header_means_no_credentials() -> None:
    assert _token("") is None
    assert _token(f'<w:Security xmlns:w="{WSSE}"/>') is None


def test_a_security_header_for_another_actor_is_not_ours() -> None:
    header = _security(
        "<w:Username>u</w:Username><w:Password>p</w:Password>", 'e:actor="urn:proxy"'
    )
    assert _token(header) is None


@pytest.mark.parametrize(
    "header",
    [
        _security("<w:Password>p</w:Password>"),
        _security("<w:Username/><w:Password>p</w:Password>"),
        _security("<w:Username>u</w:Username>"),
        _security("<w:Username>u</w:Username><w:Username>v</w:Username><w:Password>p</w:Password>"),
        _security(
            f'<w:Username>u</w:Username><w:Password Type="{PROFILE}#Kerberos">p</w:Password>'
        ),
        _security(
            "<w:Username>u</w:Username><w:Password>p</w:Password>"
            '<w:Nonce EncodingType="urn:hex">00</w:Nonce>'
        ),
        _security("<w:Username><x>u</x></w:Username><w:Password>p</w:Password>"),
        text_token() + text_token(),
    ],
)
def test_unusable_tokens_are_handed_on_as_malformed(header: str) -> None:
    """Refused at admission, as every other failure (and so audited): the problem is for the
    audit trail, not the caller."""
    token = _token(header)
    assert isinstance(token, MalformedToken), token
    assert token.problem.startswith("The WS-Security UsernameToken is not usable: ")
