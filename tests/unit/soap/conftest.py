"""Fixtures of the SOAP adapter's unit tests: a fake service behind the real router."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import xmlschema
from fastapi import FastAPI

from app.soap import soap_router
from app.soap.contract import DEFAULT_CONTRACT_DIR
from tests.unit.soap.fake_counter import FakeCounter


@pytest.fixture
def fake() -> FakeCounter:
    return FakeCounter()


@pytest.fixture
def app(fake: FakeCounter) -> FastAPI:
    app = FastAPI()
    app.include_router(soap_router(counter=fake))
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        yield client


@pytest.fixture(scope="session")
def schema() -> xmlschema.XMLSchema:
    """The contract's XSD, to validate what the adapter writes."""
    return xmlschema.XMLSchema(str(DEFAULT_CONTRACT_DIR / "contribution.xsd"))
