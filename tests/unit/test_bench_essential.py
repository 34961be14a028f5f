"""The bench's essential-work service admits only a right PasswordDigest of its one partner, as
the gateway does: a floor that skipped the check would not be the essential work."""

from __future__ import annotations

import base64
import hashlib

import pytest
from lxml import etree

from bench.essential_app import Essential
from bench.report import all_cores_row

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
CREATED = "2026-12-07T16:59:59Z"


@pytest.fixture
def essential(monkeypatch: pytest.MonkeyPatch) -> Essential:
    for name, value in {
        "ESSENTIAL_USERNAME": "bench-partner",
        "ESSENTIAL_PASSWORD": "right-secret",
        "ESSENTIAL_MEMBER_SQL": "SELECT 1",
        "ESSENTIAL_SINCE": "2025-12-01",
    }.items():
        monkeypatch.setenv(name, value)
    return Essential()


def _token(
    *, username: str = "bench-partner", secret: str = "right-secret", nonce: str | None = None
) -> etree._Element:
    raw = b"sixteen-byte-nce"
    digest = base64.b64encode(hashlib.sha1(raw + CREATED.encode() + secret.encode()).digest())
    return etree.fromstring(
        f'<wsse:UsernameToken xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}">'
        f"<wsse:Username>{username}</wsse:Username>"
        f"<wsse:Password>{digest.decode()}</wsse:Password>"
        f"<wsse:Nonce>{nonce or base64.b64encode(raw).decode()}</wsse:Nonce>"
        f"<wsu:Created>{CREATED}</wsu:Created></wsse:UsernameToken>"
    )


def test_the_partners_right_digest_is_admitted(essential: Essential) -> None:
    assert essential._admitted(_token())


@pytest.mark.parametrize(
    "token",
    [
        pytest.param({"secret": "wrong-secret"}, id="another secret"),
        pytest.param({"username": "someone-else"}, id="another partner"),
        pytest.param({"nonce": "not base64!"}, id="a nonce that is not Base64"),
    ],
)
def test_any_other_token_is_refused(essential: Essential, token: dict[str, str]) -> None:
    assert not essential._admitted(_token(**token))


def test_a_token_without_created_is_refused(essential: Essential) -> None:
    token = _token()
    token.remove(token.find(f"{{{WSU}}}Created"))

    assert not essential._admitted(token)


def test_the_two_worker_row_names_the_machines_own_figure_beside_it() -> None:
    closed = {"rps": 1_900.0, "p50_ms": 30.0, "p99_ms": 60.0, "errors": {"read": 0}}
    figures = {
        "closed": {"soap_inquiry": {"rps": 1_000.0}, "soap_inquiry_all_cores": closed},
        "all_cores_workers": 2,
        "machine_scaling": {
            "before the closed loops": {"ratio": 1.47},
            "before the all-cores run": {"ratio": 1.83},
        },
    }

    row = all_cores_row(figures)

    assert row is not None
    assert row[0] == (
        "SOAP InquireContribution, all cores (2 workers): 1.90× one worker"
        " (plain Python, two processes against one: 1.47× then 1.83×)"
    )
    assert row[-1] == "met"
