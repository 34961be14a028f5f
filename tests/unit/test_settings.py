"""Settings that are checked when the gateway starts, so a wrong value fails loudly at once."""

from __future__ import annotations

from datetime import time

import pytest
from pydantic import ValidationError

from app.settings import Settings


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://gateway.sso.go.th", "https://gateway.sso.go.th"),
        ("https://gateway.sso.go.th/", "https://gateway.sso.go.th"),  # /soap/v1 is appended
        ("http://10.0.0.1:8080/ssogw/", "http://10.0.0.1:8080/ssogw"),  # behind a path prefix
        (" https://[2001:db8::1]:8443 ", "https://[2001:db8::1]:8443"),
        ("", None),  # as an empty variable in a manifest: unset
        (None, None),
    ],
)
def test_a_public_base_url_is_kept_without_a_trailing_slash(
    given: str | None, kept: str | None
) -> None:
    assert Settings(public_base_url=given).public_base_url == kept


@pytest.mark.parametrize(
    "given",
    [
        "gateway.sso.go.th",  # not absolute
        "/soap",
        "ftp://gateway.sso.go.th",
        "https://",
        "https://gateway.sso.go.th/?partner=x",
        "https://gateway.sso.go.th/?",
        "https://gateway.sso.go.th/#top",
        "https://user:secret@gateway.sso.go.th",
        "https://gateway.sso.go.th:port",
        "https://gateway.sso.go.th:70000",
        "https://gateway sso.go.th",
        'https://gateway.sso.go.th/"><x',
    ],
)
def test_a_public_base_url_that_is_not_an_absolute_http_url_is_refused(given: str) -> None:
    with pytest.raises(ValidationError, match="public_base_url"):
        Settings(public_base_url=given)


@pytest.mark.parametrize("value", ["00:00", "09:00", "23:00+00:00"])
def test_a_cut_off_that_would_misplace_the_business_day_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="cut-off"):
        Settings(settlement_cutoff=value)


def test_a_cut_off_in_the_evening_is_taken() -> None:
    assert Settings(settlement_cutoff="22:30").settlement_cutoff == time(22, 30)
