"""The REST contract: the committed OpenAPI document is what the app serves, every schema is
described with an example, and schemathesis finds no server error and no answer off the schema.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from itertools import product
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.cli.openapi_export import openapi_document, render
from app.main import Gateway
from tests.support.rest_api import bearer, new_token

pytestmark = pytest.mark.db

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
# Operations that change what every other test relies on (the rate table) are not fuzzed;
# their own tests cover them.
NOT_FUZZED = ("addRate", "addRetroactiveRate")
EXAMPLES_PER_OPERATION = 10
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def served(live_url: str) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{live_url}/openapi.json", timeout=30).json()
    return document


def test_the_committed_document_is_what_the_app_serves(live_url: str) -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == served(live_url), "run `make openapi` and commit openapi/openapi.json"
    assert COMMITTED.read_text(encoding="utf-8") == render(openapi_document())


def test_every_schema_has_a_description_and_an_example(live_url: str) -> None:
    schemas = served(live_url)["components"]["schemas"]
    undocumented = [
        name
        for name, schema in schemas.items()
        if not schema.get("description") or not (schema.get("examples") or schema.get("example"))
    ]
    assert undocumented == []


def test_every_api_operation_needs_a_bearer_token_and_documents_its_problems(
    live_url: str,
) -> None:
    document = served(live_url)
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation["security"] == [{"bearerAuth": []}], where
            assert operation["operationId"] and operation["summary"], where
            for status in ("401", "403", "422", "500", "503"):
                content = operation["responses"][status]["content"]
                assert list(content) == ["application/problem+json"], where


@pytest.fixture
async def fuzz_token(gateway: Gateway) -> str:
    return await new_token(gateway, ["counter", "admin", "audit"], rate_limit=100_000)


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_schema(
    live_url: str, fuzz_token: str
) -> None:
    schema = (
        schemathesis.openapi.from_dict(served(live_url))
        .include(path_regex="^/api/v1/")
        .exclude(operation_id=list(NOT_FUZZED))
    )
    headers = bearer(fuzz_token)
    started = time.monotonic()
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation, mode in product(operations, MODES):

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call_and_validate(base_url=live_url, headers=headers, checks=CHECKS)
            statuses[response.status_code // 100 * 100] += 1

        try:
            fuzz()
        except Exception as exc:
            # A FlakyFailure (failed once, not on the replay) hides its cause in a group.
            causes = "; ".join(f"{type(e).__name__}: {e}" for e in getattr(exc, "exceptions", ()))
            failures.append(
                f"{operation.label} ({mode.value}): {type(exc).__name__}: {exc} {causes}"[:3000]
            )
    assert failures == [], "\n\n".join(failures)
    # The run did reach the app, and both accepted and refused requests.
    assert statuses[200] > 0 and statuses[400] > 0, statuses
    print(statuses)
    assert time.monotonic() - started < 90
