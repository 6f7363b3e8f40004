"""The OpenAPI 3.0 document of the management API, served at ``GET /openapi.json``.

Built as a dict so it stays next to the code it describes; the integration
tests fuzz the served API against it with schemathesis.
"""

from __future__ import annotations

import copy
from typing import Any

from debtgate import __version__

MAX_ACCOUNT = 64
MAX_REASON = 500
MAX_KEY = 128
MAX_ID = 64
MAX_TTL = 366 * 86400

JSON = "application/json"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _err(description: str) -> dict[str, Any]:
    return _ok(description, _ref("Error"))


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": summary, "responses": {
        "503": _err("Temporarily unable (kernel or billing failing); retry"), **responses,
        "401": _err("Missing or wrong bearer token (TCP listener only)")}}
    out.update(extra)
    return out


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


_NUM = {"type": "number"}
_INT = {"type": "integer"}
_STR = {"type": "string"}
_COUNTS = {"type": "object", "additionalProperties": _NUM}
_TS = {"oneOf": [_NUM, _STR], "nullable": True}

SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": _STR}, ["error"]),
    "Health": _obj({"alive": {"type": "boolean"}}, ["alive"]),
    "Ready": _obj({"ready": {"type": "boolean"}, "reason": _STR}, ["ready", "reason"]),
    "Status": _obj({
        "version": _STR, "uptime": _NUM,
        "feed": _obj({"kind": _STR, "connected": {"type": "boolean"}, "last_snapshot": _TS,
                      "last_event": _TS, "lag": {"type": "number", "nullable": True},
                      "last_error": {"type": "string", "nullable": True}, "rejected": _COUNTS,
                      "foreign": _obj({"rows": _INT, "addresses": _INT})}),
        "subscribers": _COUNTS,
        "sets": {"type": "object", "additionalProperties": _obj({"desired": _INT,
                                                                 "kernel": _INT})},
        "drift_repairs": _INT, "applies": _INT, "kernel_writes": _INT, "apply_errors": _INT,
        "last_apply_seconds": _NUM, "conntrack_cut": _INT, "bulk_slices": _INT,
        "urgent_first": _INT,
        "garden": _obj({"static": _INT, "domains": {"type": "object", "additionalProperties": _obj(
            {"addresses": _INT, "expires_in": _NUM,
             "error": {"type": "string", "nullable": True}})}}),
        "radius": {"type": "object", "additionalProperties": _obj({
            "sent": _INT, "ack": _INT, "nak": _COUNTS, "timeouts": _INT, "latency_avg_ms": _NUM,
            "queue_depth": _INT, "eta_s": _NUM, "silent_s": _NUM,
            "last_answer_ago_s": {"type": "number", "nullable": True},
            "degraded": {"type": "string", "nullable": True}})},
        "portal": _obj({"views": _INT, "acks": _INT, "errors": _INT}),
        "guard": _obj({"holding": {"type": "boolean"}, "held_restrictions": _INT,
                       "threshold_percent": _NUM, "threshold_count": _INT, "since": _TS}),
        "degraded": {"type": "object", "additionalProperties": _STR},
        "sync": _obj({"in_sync": {"type": "boolean"}, "reason": _STR}),
    }),
    "Explanation": {"type": "object", "description": "Why a subscriber is in its state: "
                    "account, state, addresses, set membership, overrides, history."},
    "Override": _obj({
        "id": _STR, "account": _STR, "action": {"type": "string", "enum": ["restrict", "release"]},
        "reason": _STR, "author": _STR,
        "expires_at": {"type": "string", "format": "date-time", "nullable": True},
        "created_at": {"type": "string", "format": "date-time"},
    }, ["id", "account", "action"]),
    "OverrideRequest": {**_obj({
        "account": {"type": "string", "minLength": 1, "maxLength": MAX_ACCOUNT},
        "action": {"type": "string", "enum": ["restrict", "release"]},
        "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON},
        "expires_at": {"type": "string", "format": "date-time",
                       "description": "ISO 8601 with a UTC offset; exclusive with ttl_seconds"},
        "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_TTL},
    }, ["account", "action", "reason"]), "additionalProperties": False},
    "GuardResult": {"type": "object", "description": "What the approval released"},
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0.3 document (a fresh dict each call)."""
    key = {"name": "key", "in": "path", "required": True,
           "description": "An IPv4/IPv6 address or a billing account",
           "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY}}
    oid = {"name": "id", "in": "path", "required": True,
           "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ID}}
    paths: dict[str, Any] = {
        "/healthz": {"get": _op("Liveness", {"200": _ok("Alive", _ref("Health"))})},
        "/readyz": {"get": _op("Readiness: synced once and the feed is fresh", {
            "200": _ok("Ready", _ref("Ready")), "503": _ok("Not ready", _ref("Ready"))})},
        "/status": {"get": _op("Everything the NOC watches", {
            "200": _ok("Status", _ref("Status"))})},
        "/metrics": {"get": _op("Prometheus exposition", {"200": {
            "description": "Metrics", "content": {"text/plain": {"schema": _STR}}}})},
        "/subscribers/{key}": {"get": _op("Explain one subscriber", {
            "200": _ok("Explanation", _ref("Explanation")), "404": _err("Unknown")},
            parameters=[key])},
        "/overrides": {
            "get": _op("Manual overrides", {"200": _ok("Overrides", {
                "type": "array", "items": _ref("Override")})}),
            "post": _op("Add a manual override", {
                "201": _ok("Created", _ref("Override")), "400": _err("Bad input"),
                "413": _err("Body too large")},
                requestBody={"required": True,
                             "content": {JSON: {"schema": _ref("OverrideRequest")}}}),
        },
        "/overrides/{id}": {"delete": _op("Remove an override", {
            "204": _ok("Removed"), "404": _err("Unknown override")}, parameters=[oid])},
        "/resync": {"post": _op("Ask the billing feed for a full resync", {
            "202": _ok("Accepted", _obj({"accepted": {"type": "boolean"}}))})},
        "/guard/approve": {"post": _op("Approve the restrictions the guard holds", {
            "200": _ok("Approved", _ref("GuardResult")),
            "409": _err("Nothing to approve")})},
        "/openapi.json": {"get": _op("This document", {"200": _ok("OpenAPI", {
            "type": "object"})})},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "debtgate management API", "version": __version__,
                 "description": "Root-only Unix socket (no token) or TCP with a bearer token."},
        "paths": paths,
        "components": {"schemas": copy.deepcopy(SCHEMAS), "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
