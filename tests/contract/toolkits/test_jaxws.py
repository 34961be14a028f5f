"""Java's JAX-WS, as a partner would use it: `wsimport` with its default options (wrapper style,
no bindings file, no -extension) on the WSDL a live gateway serves, `javac` on what it makes and
on a small client, and that client calling the gateway with a WS-Security PasswordDigest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app.admission.credentials import PasswordType
from tests.contract.conftest import LiveServer
from tests.unit.soap.fake_counter import PASSWORD, RETURNED_ID, S39_ID, S40_ID, USERNAME

pytestmark = pytest.mark.toolkit

HERE = Path(__file__).parent
CLIENT = HERE / "CounterClient.java"
TIMEOUT_S = 120


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"{name} is not installed (Debian: wsimport comes with the package jaxws, javac with"
            " a JDK); scripts/ensure-os-tools installs them when run as root"
        )
    return path


def _run(*command: str, cwd: Path) -> str:
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command[:2])} failed:\n{output}"
    return output


def test_wsimport_defaults_make_java_that_compiles_and_calls_the_gateway(
    live_server: LiveServer, tmp_path: Path
) -> None:
    wsimport, javac, java = _tool("wsimport"), _tool("javac"), _tool("java")
    # The JAX-WS runtime beside wsimport (<home>/bin/wsimport.sh, <home>/lib/jaxws-rt.jar).
    runtime = Path(wsimport).resolve().parents[1] / "lib" / "jaxws-rt.jar"
    if not runtime.exists():
        pytest.skip(f"no JAX-WS runtime at {runtime}, beside {wsimport}")
    sources, classes = tmp_path / "src", tmp_path / "classes"
    sources.mkdir()

    report = _run(
        wsimport, "-keep", "-Xnocompile", "-s", str(sources), live_server.wsdl_url, cwd=tmp_path
    )
    assert "[ERROR]" not in report, report
    # JAX-WS 2.x reads a SOAP 1.2 port only with -extension; Java partners use the 1.1 port.
    warnings = [line for line in report.splitlines() if "[WARNING]" in line]
    assert all('"ContributionSoap12"' in line for line in warnings), report
    generated = sorted(sources.rglob("*.java"))
    port_type = (sources / "sso/contribution/v1/ContributionPortType.java").read_text()
    # Wrapper style: each operation returns its result type, the request's fields are parameters.
    for returns in (
        "public InquiryResult inquireContribution(",
        "public ConfirmResult confirmPayment(",
        "public CancelResult cancelPayment(",
        "public StatusResult getPaymentStatus(",
    ):
        assert returns in port_type, port_type

    _run(
        javac, "-nowarn", "-encoding", "UTF-8", "-cp", str(runtime), "-d", str(classes),
        *map(str, generated), str(CLIENT), cwd=tmp_path,
    )  # fmt: skip
    answer = _run(
        java, "-cp", f"{classes}:{runtime}", "CounterClient", USERNAME, PASSWORD, S39_ID, S40_ID,
        RETURNED_ID, cwd=tmp_path,
    )  # fmt: skip
    lines = set(answer.splitlines())
    assert {
        f"{S39_ID}.familyName=ใจดี",
        f"{S39_ID}.section=39",
        f"{S39_ID}.option=-",
        f"{S39_ID}.effectiveDate=2019-03-01",
        f"{S39_ID}.returnCode=00",
        f"{S39_ID}.paymentPeriod=monthly",
        f"{S39_ID}.paymentMethod=-",
        f"{S39_ID}.amountDue=-",
        f"{S39_ID}.month=2024-04 432.00 2024-05-15 -",  # no government share for Section 39
        f"{S39_ID}.defaultTotal=864.00",
        f"{S40_ID}.familyName=ศรีสุข",
        f"{S40_ID}.option=2",
        f"{S40_ID}.effectiveDate=-",
        f"{S40_ID}.paymentPeriod=202405",
        f"{S40_ID}.paymentMethod=counter",
        f"{S40_ID}.lastPaymentDate=2024-05-20",
        f"{S40_ID}.lastPaymentAmount=100.00",
        f"{S40_ID}.amountDue=100.00",
        f"{S40_ID}.month=2024-06 100.00 - 50.00",
        "status=unknown -",
        "fault=true",
        # Contract 1.1: absent for the 1.0-shaped answers, read where present.
        f"{S39_ID}.eligibility=-",
        f"{RETURNED_ID}.eligibility=override",
        f"{RETURNED_ID}.previous=40 2022-07-01 2023-09 section33_employment 1",
        f"{RETURNED_ID}.previous=39 2019-03-01 2022-05 three_consecutive_unpaid -",
    } <= lines, answer
    assert not any(line.startswith(f"{S40_ID}.previous=") for line in lines)
    calls = live_server.fake.calls
    assert [name for name, *_ in calls] == ["inquire", "inquire", "inquire", "status", "inquire"]
    assert {token.password_type for _, _, token, _ in calls} == {PasswordType.DIGEST}
