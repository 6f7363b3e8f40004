"""Fuzz the served API against its own OpenAPI document (schemathesis).

Every operation gets bounded positive and negative examples over TCP with the
token; no response may be a server error, and every response must match the
document (status code, content type, schema).
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import Served

pytestmark = pytest.mark.timeout(120)
MAX_EXAMPLES = 30


def fuzz(strategy: st.SearchStrategy[schemathesis.Case], checks: list, base_url: str,
         auth: dict[str, str]) -> None:
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=auth)
        case.validate_response(response, checks=checks, headers=auth)

    run()


def test_no_server_errors(served: Served) -> None:
    auth = {"Authorization": f"Bearer {served.token}"}
    schema = schemathesis.openapi.from_url(served.url + "/openapi.json", headers=auth)
    operations = [result.ok() for result in schema.get_all_operations()]
    # from_url leaves out the schema's own location (GET /openapi.json): 10 remain.
    assert len(operations) == 10, "; ".join(op.label for op in operations)
    started = time.monotonic()
    for operation in operations:
        fuzz(operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
             [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance], served.url, auth)
        fuzz(operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
             [not_a_server_error], served.url, auth)
    assert time.monotonic() - started < 60
