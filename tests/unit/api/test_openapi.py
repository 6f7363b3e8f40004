"""The OpenAPI document matches the application's routes and loads as OpenAPI 3.0."""

from __future__ import annotations

import json

import schemathesis

from debtgate.api.mgmt import make_mgmt_app
from debtgate.api.openapi import openapi_document
from tests.integration.api.backend import MemoryBackend


def test_routes_match_document() -> None:
    app = make_mgmt_app(MemoryBackend(), None)
    routes = {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
              if r.method != "HEAD" and r.resource is not None}
    doc = openapi_document()
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert routes == documented


def test_document_loads_and_is_json() -> None:
    doc = openapi_document()
    json.dumps(doc)
    schema = schemathesis.openapi.from_dict(doc)
    assert len([r.ok() for r in schema.get_all_operations()]) == 11
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "401" in op["responses"], (method, path)


def test_fresh_copy() -> None:
    openapi_document()["components"]["schemas"].clear()
    assert openapi_document()["components"]["schemas"]
