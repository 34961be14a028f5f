"""Fixtures of the contract tests: the app on a real port, the XSD, golden-file helpers."""

from __future__ import annotations

import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
import xmlschema
from fastapi import FastAPI
from lxml import etree

from app.soap import soap_router
from app.soap.contract import DEFAULT_CONTRACT_DIR
from tests.unit.soap.fake_counter import FakeCounter

GOLDEN = Path(__file__).parent / "golden"


@dataclass(frozen=True)
class LiveServer:
    """The SOAP endpoint served by uvicorn on 127.0.0.1, over a fake service."""

    base_url: str
    fake: FakeCounter

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/soap/v1"

    @property
    def wsdl_url(self) -> str:
        return f"{self.endpoint}?wsdl"


@pytest.fixture(scope="session")
def live_server_session() -> Iterator[LiveServer]:
    fake = FakeCounter()
    app = FastAPI()
    app.include_router(soap_router(counter=fake))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="off", ws="none", loop="asyncio", http="httptools", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", fake)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def live_server(live_server_session: LiveServer) -> LiveServer:
    """The live server with its fake service emptied."""
    live_server_session.fake.reset()
    return live_server_session


@pytest.fixture(scope="session")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(DEFAULT_CONTRACT_DIR / "contribution.xsd"))


def canonical(xml: bytes) -> str:
    """XML in canonical form (C14N 2.0), whitespace between elements dropped."""
    return ET.canonicalize(xml.decode("utf-8"), strip_text=True)


def pretty(xml: bytes) -> bytes:
    """XML indented for people, for writing golden files."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    tree = etree.fromstring(xml, parser)
    return etree.tostring(tree, pretty_print=True, xml_declaration=True, encoding="UTF-8")
