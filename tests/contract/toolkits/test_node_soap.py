"""node-soap, as a partner would use it: a client made from the WSDL a live gateway serves runs a
counter's whole flow (inquire, confirm, status, cancel, faults) with a WS-Security UsernameToken
and PasswordDigest, on the SOAP 1.1 and the SOAP 1.2 port.

node-soap is pinned in package.json and package-lock.json beside this file and installed into
node_modules here by ``npm ci`` when what is there is not what the lock names (with no network
and nothing installed, the test skips and says why).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.admission.credentials import PasswordType
from tests.contract.conftest import LiveServer
from tests.support.npm import npm_ci
from tests.unit.soap.fake_counter import PASSWORD, RETURNED_ID, S39_ID, S40_ID, USERNAME

pytestmark = pytest.mark.toolkit

HERE = Path(__file__).parent
FLOW = HERE / "soap_flow.js"


@pytest.fixture(scope="module")
def node() -> str:
    """node, with node-soap as locked installed beside this file."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the node-soap client cannot run")
    if (failed := npm_ci(HERE)) is not None:
        pytest.skip(f"npm ci could not install node-soap: {failed}")
    return node


def _flow(node: str, live_server: LiveServer, port: str) -> dict[str, Any]:
    config = {
        "wsdl": live_server.wsdl_url,
        "port": port,
        "username": USERNAME,
        "password": PASSWORD,
        "s39": S39_ID,
        "s40": S40_ID,
        "returned": RETURNED_ID,
        "txn": f"NODE-{port}",
    }
    done = subprocess.run(
        [node, str(FLOW), json.dumps(config)],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answers: dict[str, Any] = json.loads(done.stdout)
    return answers


@pytest.mark.parametrize("port", ["ContributionSoap11", "ContributionSoap12"])
def test_node_soap_runs_a_counter_flow(node: str, live_server: LiveServer, port: str) -> None:
    answers = _flow(node, live_server, port)
    s39, s40 = answers["s39"], answers["s40"]
    # Each section's source fields, and only its own; unknown figures absent, never 0.00.
    assert (s39["familyName"], s39["returnCode"], s39["paymentPeriod"]) == (
        "ใจดี",
        "00",
        "monthly",
    )
    assert s39["effectiveDate"].startswith("2019-03-01")
    assert not {"paymentMethod", "lastPaymentDate", "lastPaymentAmount", "amountDue"} & set(s39)
    assert [m["amount"] for m in s39["payableMonths"]["payableMonth"]] == ["432.00"] * 2
    assert not any("governmentShare" in m for m in s39["payableMonths"]["payableMonth"])
    assert (s40["paymentMethod"], s40["paymentPeriod"], s40["lastPaymentAmount"]) == (
        "counter",
        "202405",
        "100.00",
    )
    assert s40["lastPaymentDate"].startswith("2024-05-20") and s40["amountDue"] == "100.00"
    assert not {"effectiveDate", "returnCode"} & set(s40)
    assert s40["payableMonths"]["payableMonth"][0]["governmentShare"] == "50.00"
    # Contract 1.1: absent from the 1.0-shaped answers, read where present.
    assert not {"eligibility", "previousMemberships"} & (set(s39) | set(s40))
    returned = answers["returned"]
    assert returned["eligibility"] == "override"
    ended = returned["previousMemberships"]["membership"]
    assert [(m["section"], m["endedMonth"], m["endReason"]) for m in ended] == [
        ("40", "2023-09", "section33_employment"),
        ("39", "2022-05", "three_consecutive_unpaid"),
    ]  # node-soap gives numbers as text
    assert ended[0]["option"] == "1" and "option" not in ended[1]

    confirmed, status, cancelled = answers["confirmed"], answers["status"], answers["cancelled"]
    assert (confirmed["amount"], confirmed["months"]["month"]) == ("864.00", ["2024-04", "2024-05"])
    assert confirmed["replayed"] is False
    assert (status["state"], status["receiptNo"]) == ("confirmed", confirmed["receiptNo"])
    assert (cancelled["state"], cancelled["receiptNo"]) == ("cancelled", confirmed["receiptNo"])
    assert answers["after"]["state"] == "cancelled"
    assert answers["faults"] == {
        "confirmAgain": "client.transaction_cancelled",
        "unknownPerson": "client.person_not_found",
    }

    calls = live_server.fake.calls
    assert [name for name, *_ in calls] == [
        "inquire", "inquire", "inquire", "confirm", "status", "cancel", "status", "confirm",
        "inquire",
    ]  # fmt: skip
    assert {token.password_type for _, _, token, _ in calls} == {PasswordType.DIGEST}
