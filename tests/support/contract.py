"""The OpenAPI document (docs/openapi.json) as a judge of real answers: the status must be one the
operation declares, the body must fit that status's schema (formats included), and the gateway's
headers must be there. Records which (operation, status) pairs were seen, so a test can require
that every operation was answered."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
BASE = "urn:studiox:openapi"


def load_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return document


@dataclass
class Contract:
    document: dict[str, Any] = field(default_factory=load_document)
    seen: set[tuple[str, int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._registry: Registry[Any] = Registry().with_resource(
            BASE, Resource.from_contents(self.document, default_specification=DRAFT202012)
        )
        # Literal paths before templated ones (/api/tasks/stats before /api/tasks/{id}).
        self._routes = sorted(
            (
                (
                    re.compile("^" + re.sub(r"\{[^/}]+\}", "[^/]+", template) + "$"),
                    verb,
                    operation,
                )
                for template, operations in self.document["paths"].items()
                for verb, operation in operations.items()
            ),
            key=lambda route: "[^/]+" in route[0].pattern,
        )

    def operation_ids(self) -> set[str]:
        return {op["operationId"] for _, _, op in self._routes}

    def operation(self, method: str, path: str) -> dict[str, Any]:
        for pattern, verb, operation in self._routes:
            if verb == method.lower() and pattern.match(path):
                return operation
        raise AssertionError(f"{method} {path} is not in docs/openapi.json")

    def check(self, response: httpx.Response) -> httpx.Response:
        """Assert that `response` is one the document allows; returns it for chaining."""
        request = response.request
        operation = self.operation(request.method, request.url.path)
        where = f"{request.method} {request.url.path} -> {response.status_code}"
        declared = operation["responses"].get(str(response.status_code))
        assert declared is not None, (
            f"{where}: status not declared ({sorted(operation['responses'])}): {response.text}"
        )
        assert response.headers.get("content-type", "").startswith("application/json"), where
        assert response.headers.get("x-request-id"), f"{where}: no x-request-id"
        schema = declared["content"]["application/json"]["schema"]
        problems = list(self._validator(schema).iter_errors(response.json()))
        assert not problems, f"{where}: " + "; ".join(
            f"{p.json_path}: {p.message}" for p in problems[:5]
        )
        self.seen.add((operation["operationId"], response.status_code))
        return response

    def _validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        return Draft202012Validator(
            _absolute(schema),
            registry=self._registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )


def _absolute(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            k: (
                BASE + v
                if k == "$ref" and isinstance(v, str) and v.startswith("#")
                else _absolute(v)
            )
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute(v) for v in schema]
    return schema
