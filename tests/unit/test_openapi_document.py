"""The OpenAPI generator (scripts/openapi.py): the committed document is what the protos produce,
every public RPC binding is an operation, and what the transcoder prints is what the schemas say."""

from __future__ import annotations

import json

import pytest
from google.api import annotations_pb2

from scripts import openapi
from tests.support.contract import DOCUMENT


@pytest.fixture(scope="module")
def document() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(openapi.render())
    return loaded


def test_the_committed_document_is_what_the_protos_produce() -> None:
    assert DOCUMENT.read_text() == openapi.render(), "run `make gen` and commit docs/openapi.json"


def test_every_public_binding_is_an_operation(document: dict[str, object]) -> None:
    protos = openapi.Protos(openapi.DESCRIPTOR)
    bindings = sum(
        len(list(openapi._bindings(m.proto.options.Extensions[annotations_pb2.http])))
        for m in protos.methods
    )
    paths = document["paths"]
    assert isinstance(paths, dict)
    assert sum(len(ops) for ops in paths.values()) == bindings == 27
    assert not any("Internal" in m.service for m in protos.methods)


def test_schemas_follow_the_print_options(document: dict[str, object]) -> None:
    schemas = document["components"]["schemas"]  # type: ignore[index]
    task = schemas["Task"]
    # always_print_primitive_fields: scalars always there; unset messages (completedAt) left out.
    assert {"id", "status", "error", "creditsCost", "createdAt"} <= set(task["required"])
    assert "completedAt" not in task["required"]
    assert "outputData" not in task["required"]
    assert task["additionalProperties"] is False
    assert task["properties"]["createdAt"]["format"] == "date-time"
    assert task["properties"]["inputData"] == {
        "type": "object",
        "additionalProperties": True,
        "description": "The input the task was created with (a JSON object).",
    }
    assert schemas["TaskStats"]["properties"]["byType"]["additionalProperties"]["type"] == "integer"
    # Requests: nothing required unless annotated; unknown fields are not refused.
    create = schemas["CreateTaskRequest"]
    assert create["required"] == ["type"]
    assert "additionalProperties" not in create
    assert schemas["Error"]["required"] == ["error", "statusCode"]


def test_64_bit_integers_are_strings_in_answers() -> None:
    int64 = openapi.FD.TYPE_INT64
    assert openapi._scalar(int64, "response")["type"] == "string"
    assert openapi._scalar(openapi.FD.TYPE_INT32, "response")["type"] == "integer"


def test_a_protobuf_enum_cannot_reach_the_wire() -> None:
    schemas = openapi.Schemas(openapi.Protos(openapi.DESCRIPTOR))
    with pytest.raises(SystemExit, match="FOO_BAR"):
        schemas.ref(".studiox.credit.v1.Bucket", "response")


def test_statuses_per_route(document: dict[str, object]) -> None:
    paths = document["paths"]
    assert isinstance(paths, dict)

    def statuses(path: str, verb: str) -> set[str]:
        return set(paths[path][verb]["responses"])

    assert statuses("/api/tasks/create", "post") >= {"201", "400", "401", "402", "403", "413"}
    assert "200" not in statuses("/api/tasks/create", "post")
    assert statuses("/api/users/initialize", "post") >= {"200", "201"}
    assert "401" not in statuses("/api/billing/plans", "get")
    assert "429" not in statuses("/health", "get")
    assert paths["/api/billing/webhook"]["post"]["security"] == []
    assert paths["/api/tasks/{id}/status"]["patch"]["security"] == [{"internalToken": []}]
    assert "403" in statuses("/api/tasks/{id}/status", "patch")
