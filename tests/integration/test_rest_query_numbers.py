"""Whole numbers in a REST query or path are read as written (``app.rest.wire.digits``): ASCII
digits, nothing else. pydantic's lax mode read ``4_0``, ``+40``, `` 40`` and ``40.0`` as 40,
so a settlement import id ``1_0`` showed import 10."""

from __future__ import annotations

import pytest

from app.main import Gateway
from tests.support.rest_api import new_token, problem, rest

pytestmark = pytest.mark.db

_NOT_DIGITS = ("4_0", "+40", " 40", "40.0", "๔๐", "4e1")


@pytest.mark.parametrize("text", _NOT_DIGITS)
async def test_a_section_in_a_query_is_digits(live_url: str, gateway: Gateway, text: str) -> None:
    async with rest(live_url, await new_token(gateway, ["admin"])) as api:
        answer = await api.get("/api/v1/insured", params={"section": text})
        assert problem(answer, 422, "client.invalid_input")["fields"] == ["section"]
        assert (await api.get("/api/v1/insured", params={"section": "40"})).status_code == 200


@pytest.mark.parametrize("text", ("1_0", "+10", "10.0", "0", "501"))  # digits, and in bounds
async def test_a_page_size_is_digits(live_url: str, gateway: Gateway, text: str) -> None:
    async with rest(live_url, await new_token(gateway, ["admin"])) as api:
        answer = await api.get("/api/v1/insured", params={"limit": text})
        assert problem(answer, 422, "client.invalid_input")["fields"] == ["limit"]


@pytest.mark.parametrize("path", ("/api/v1/settlements/1_0", "/api/v1/complaints/1_0"))
async def test_an_id_in_a_path_is_digits(live_url: str, gateway: Gateway, path: str) -> None:
    async with rest(live_url, await new_token(gateway, ["admin", "audit"])) as api:
        answer = await api.get(path)
        assert problem(answer, 422, "client.invalid_input")["fields"] == ["id"]
