"""The WS-Security UsernameToken of a request, extracted but not checked.

The token is taken from the ``wsse:Security`` header block addressed to the gateway, with its
values as the client wrote them (surrounding whitespace aside): the digest covers the Nonce
and the Created text exactly.
Checking it — digest, nonce replay, Created window, PasswordText permission — is the service
layer's job: a request without a token is passed on with no credentials, and one whose token
cannot be read as a ``MalformedToken``, and both are refused there (and audited) as every
other caller that is not admitted.
"""

from __future__ import annotations

from typing import Final

from app.admission.credentials import MalformedToken, PasswordType, UsernameToken
from app.soap.envelope import Envelope, Shape, attribute, child_elements, simple_text, single

_PROFILE: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
)
_MESSAGE_SECURITY: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0"
)
PASSWORD_TYPES: Final = {
    f"{_PROFILE}#PasswordDigest": PasswordType.DIGEST,
    f"{_PROFILE}#PasswordText": PasswordType.TEXT,
}
BASE64_BINARY: Final = f"{_MESSAGE_SECURITY}#Base64Binary"


class _Malformed(Exception):
    """The token cannot be read; the message says why."""


def _malformed(problem: str) -> _Malformed:
    return _Malformed(f"The WS-Security UsernameToken is not usable: {problem}.")


def _text(fields: dict[str, object], name: str, *, required: bool) -> str | None:
    local = name.partition(":")[2]
    if name not in fields:
        if required:
            raise _malformed(f"it has no {local}")
        return None
    try:
        text = simple_text(fields[name])
    except Shape as shape:
        raise _malformed(f"its {local} {shape.message}") from None
    if not text:
        raise _malformed(f"its {local} is empty")
    return text


def _token(envelope: Envelope) -> dict[str, object] | None:
    blocks = envelope.blocks_for_us("wsse:Security")
    if not blocks:
        return None
    if len(blocks) > 1:
        raise _malformed("more than one wsse:Security header is addressed to the gateway")
    try:
        token = child_elements(blocks[0]).get("wsse:UsernameToken")
        if token is None:
            return None
        return child_elements(single(token))
    except Shape as shape:
        raise _malformed(f"the token {shape.message}") from None


def read_username_token(envelope: Envelope) -> UsernameToken | MalformedToken | None:
    """The UsernameToken addressed to the gateway, None when the request carries none, or a
    ``MalformedToken`` saying why it cannot be read."""
    try:
        return _read_token(envelope)
    except _Malformed as malformed:
        return MalformedToken(str(malformed))


def _read_token(envelope: Envelope) -> UsernameToken | None:
    fields = _token(envelope)
    if fields is None:
        return None
    username = _text(fields, "wsse:Username", required=True)
    password = _text(fields, "wsse:Password", required=True)
    assert username is not None and password is not None  # required above
    # The UsernameToken Profile makes PasswordText the default Type.
    type_uri = attribute(fields["wsse:Password"], "Type") or f"{_PROFILE}#PasswordText"
    password_type = PASSWORD_TYPES.get(type_uri)
    if password_type is None:
        raise _malformed(f"the password Type {type_uri[:120]!r} is not supported")
    nonce = _text(fields, "wsse:Nonce", required=False)
    if nonce is not None:
        encoding = attribute(fields["wsse:Nonce"], "EncodingType")
        if encoding not in (None, BASE64_BINARY):
            raise _malformed("the Nonce must be Base64Binary")
    created = _text(fields, "wsu:Created", required=False)
    return UsernameToken(
        username=username,
        password=password,
        password_type=password_type,
        nonce_b64=nonce,
        created=created,
    )
