"""Generate the OpenAPI 3.1 document of the public REST surface (docs/openapi.json).

Usage: python scripts/openapi.py [--check] [--out PATH] [--descriptor PATH]

The source of truth is the descriptor set Envoy's transcoder loads (build/api.pb, `make gen` builds
it): the google.api.http rules give the paths, methods, parameters and bodies; the messages give
the schemas, printed the way the gateway's transcoder prints them (gateway/envoy.yaml.tmpl
print_options); the studiox.api.v1 annotations (protos/studiox/api/v1/contract.proto) give what
the http rules cannot say (success and error statuses, request headers, value sets, limits); the
services' access tables give who may call what. What is left here is what only the gateway knows
(the error envelope, the statuses every route shares) and one example per operation, checked
against the generated schemas.

--check  regenerate in memory and fail when the committed document differs (CI drift check)
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from google.api import annotations_pb2, http_pb2  # noqa: E402
from google.protobuf import descriptor_pb2  # noqa: E402
from jsonschema import Draft202012Validator  # noqa: E402
from referencing import Registry, Resource  # noqa: E402
from referencing.jsonschema import DRAFT202012  # noqa: E402

from gateway.config import PUBLIC_ROUTES  # noqa: E402
from scripts.openapi_examples import EXAMPLES  # noqa: E402
from services.kit.access import Access, access_for  # noqa: E402
from studiox.api.v1 import contract_pb2  # noqa: E402

DESCRIPTOR = ROOT / "build" / "api.pb"
# The studiox.api.v1 extensions (typed loosely by the generated stubs).
ANSWERS: Any = contract_pb2.answers
FIELD_RULES: Any = contract_pb2.field
DOCUMENT = ROOT / "docs" / "openapi.json"
STATUS_SERVICE = "studiox.status.v1.StatusService"
# Services the transcoder serves; the public ones are routed to their cluster, StatusService to all.
SERVICES = [*PUBLIC_ROUTES, STATUS_SERVICE]
TAGS = {
    "studiox.user.v1.UserService": "Users",
    "studiox.credit.v1.CreditService": "Credits",
    "studiox.credit.v1.CreditAdminService": "Admin",
    "studiox.task.v1.TaskService": "Tasks",
    "studiox.billing.v1.BillingService": "Billing",
    "studiox.credit.v1.AlertService": "Alerts",
    "studiox.billing.v1.AutoTopUpService": "Auto top-up",
    STATUS_SERVICE: "Health",
}
Json = dict[str, Any]
FD = descriptor_pb2.FieldDescriptorProto

# What every route can answer, in the gateway's own words (gateway/error_shaping.lua GENERIC and
# local_reply_config), so the examples show real bodies.
SHARED = {
    400: (
        "Bad request: malformed JSON, a value of the wrong type, or invalid input.",
        "Bad request",
    ),
    401: ("Missing, expired or invalid credential.", "Unauthorized"),
    403: ("The credential may not call this route.", "Forbidden"),
    413: ("The body is larger than the gateway's limit (1 MiB).", "Payload too large"),
    429: ("Too many requests from this client address; retry later.", "Too many requests"),
    431: ("The request headers are too large.", "Request header fields too large"),
    503: ("A service this route needs is unavailable (or not configured).", "Service unavailable"),
    504: ("The service did not answer in time.", "Gateway timeout"),
}
INFO_DESCRIPTION = """\
The StudioX REST API, served by the Envoy gateway, which transcodes JSON to the gRPC services.
This document is generated from the protos (`make gen`); tests hold the live gateway to it.

**JSON conventions** (the transcoder's print options):
- Field names are camelCase.
- Every scalar field is always printed, with its zero value when unset (`0`, `""`, `false`);
  lists as `[]` and maps as `{}`. A nested object that is not marked required is left out when it
  is unset (e.g. `completedAt` before a task finishes).
- Enumerated values are lowercase strings (`"credit_use"`, `"pending"`): no protobuf enum names.
- 64-bit integers would be JSON strings (none are used); 32-bit ones are numbers.
- Timestamps are RFC 3339 strings in UTC (`2026-01-31T12:00:00.123456Z`, 0, 3, 6 or 9 fractional
  digits).
- `inputData`/`outputData` are free-form JSON objects.

**Requests.** JSON bodies; a field sent as `null` counts as absent, and integers may also be sent
as strings of digits (protobuf JSON). Unknown body fields and unknown query parameters are
ignored, as by the seed backend. Enumerated values are matched exactly.

**Errors.** Every error is `{"error": "<message>", "statusCode": <http status>}`, the gateway's own
replies (unknown route 404, body too large 413, rate limited 429, upstream down 503) included.

**Auth.** Routes with the `bearerAuth` requirement need `Authorization: Bearer <Clerk session JWT>`;
the worker route needs the internal credential instead (`x-internal-token`). `/health`, the plans
and the Stripe webhook need neither.

Every response carries `x-request-id` (the client's own when it sent one).
"""


@dataclass(frozen=True)
class Message:
    name: str  # fully qualified, without the leading dot
    proto: descriptor_pb2.DescriptorProto
    comments: dict[tuple[int, ...], str]
    path: tuple[int, ...]  # source_code_info path of the message

    def comment(self, *sub: int) -> str:
        return self.comments.get((*self.path, *sub), "")


@dataclass(frozen=True)
class Method:
    service: str
    proto: descriptor_pb2.MethodDescriptorProto
    comment: str


class Protos:
    """The descriptor set, indexed by message name, with comments."""

    def __init__(self, descriptor: Path) -> None:
        files = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes())
        self.messages: dict[str, Message] = {}
        self.enums: set[str] = set()
        self.methods: list[Method] = []
        self.service_comments: dict[str, str] = {}
        for file in files.file:
            comments = {
                tuple(loc.path): _clean_comment(loc.leading_comments)
                for loc in file.source_code_info.location
                if loc.leading_comments
            }
            for index, message in enumerate(file.message_type):
                self._add_message(file.package, message, comments, (4, index))
            for enum in file.enum_type:
                self.enums.add(f"{file.package}.{enum.name}")
            for s_index, service in enumerate(file.service):
                full = f"{file.package}.{service.name}"
                self.service_comments[full] = comments.get((6, s_index), "")
                if full not in SERVICES:
                    continue
                for m_index, method in enumerate(service.method):
                    comment = comments.get((6, s_index, 2, m_index), "")
                    self.methods.append(Method(full, method, comment))

    def _add_message(
        self,
        prefix: str,
        message: descriptor_pb2.DescriptorProto,
        comments: dict[tuple[int, ...], str],
        path: tuple[int, ...],
    ) -> None:
        name = f"{prefix}.{message.name}"
        self.messages[name] = Message(name, message, comments, path)
        for index, nested in enumerate(message.nested_type):
            self._add_message(name, nested, comments, (*path, 3, index))
        for enum in message.enum_type:
            self.enums.add(f"{name}.{enum.name}")


def _clean_comment(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines()]
    return re.sub(r"(?<!\n)\n(?!\n)", " ", "\n".join(lines)).strip()


def _rules(field: descriptor_pb2.FieldDescriptorProto) -> contract_pb2.Field:
    rules: contract_pb2.Field = field.options.Extensions[FIELD_RULES]
    return rules


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class Schemas:
    """components/schemas, built on demand from the messages a route uses. A message is either a
    request (what the transcoder parses) or a response (what it prints), never both."""

    def __init__(self, protos: Protos) -> None:
        self.protos = protos
        self.components: dict[str, Json] = {}
        self._direction: dict[str, str] = {}
        self._owner: dict[str, str] = {}  # component name -> message it was made from

    def ref(self, type_name: str, direction: str) -> Json:
        name = type_name.lstrip(".")
        well_known = _well_known(name, direction)
        if well_known is not None:
            return well_known
        if name in self.protos.enums:
            raise SystemExit(
                f"{name}: a protobuf enum would put names like FOO_BAR on the wire; use a string "
                "field with (studiox.api.v1.field).values instead"
            )
        seen = self._direction.setdefault(name, direction)
        if seen != direction:
            raise SystemExit(f"{name} is used in both requests and responses; split it")
        key = _short(name)
        if self._owner.setdefault(key, name) != name:
            raise SystemExit(f"{name} and {self._owner[key]} would share the schema name {key}")
        if key not in self.components:
            self.components[key] = {}  # placeholder: recursion stops here
            self.components[key] = self.message(self.protos.messages[name], direction)
        return {"$ref": f"#/components/schemas/{key}"}

    def message(self, message: Message, direction: str, skip: frozenset[str] = frozenset()) -> Json:
        properties: Json = {}
        required: list[str] = []
        for index, field in enumerate(message.proto.field):
            if field.name in skip:
                continue
            schema = self.field(field, direction)
            comment = message.comment(2, index)
            if comment:
                schema = {**schema, "description": comment}
            properties[field.json_name] = schema
            if _is_required(field, direction):
                required.append(field.json_name)
        out: Json = {"type": "object", "properties": properties}
        if required:
            out["required"] = required
        if direction == "response":
            # What the gateway prints, exactly: a field it does not print is a contract change.
            out["additionalProperties"] = False
        description = message.comment()
        if description:
            out["description"] = description
        return out

    def field(self, field: descriptor_pb2.FieldDescriptorProto, direction: str) -> Json:
        if field.type == FD.TYPE_MESSAGE:
            entry = self.protos.messages.get(field.type_name.lstrip("."))
            if entry is not None and entry.proto.options.map_entry:
                value = entry.proto.field[1]
                values = self.single(value, direction, _rules(field))
                return {"type": "object", "additionalProperties": values}
        item = self.single(field, direction, _rules(field))
        if field.label == FD.LABEL_REPEATED:
            return {"type": "array", "items": item}
        return item

    def single(
        self, field: descriptor_pb2.FieldDescriptorProto, direction: str, rules: contract_pb2.Field
    ) -> Json:
        if field.type in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
            return self.ref(field.type_name, direction)
        if field.type == FD.TYPE_ENUM:
            return self.ref(field.type_name, direction)
        schema = _scalar(field.type, direction)
        if rules.values:
            schema["enum"] = list(rules.values)
        if rules.HasField("minimum"):
            schema["minimum"] = rules.minimum
        if rules.HasField("maximum"):
            schema["maximum"] = rules.maximum
        if rules.HasField("max_length"):
            schema["maxLength"] = rules.max_length
        if rules.format:
            schema["format"] = rules.format
        return schema


def _is_required(field: descriptor_pb2.FieldDescriptorProto, direction: str) -> bool:
    if _rules(field).required:
        return True
    if direction == "request":
        return False
    # always_print_primitive_fields: scalars, lists and maps are always printed; singular message
    # fields and fields with presence (proto3 `optional`, oneofs) only when set.
    if field.label == FD.LABEL_REPEATED:
        return True
    return field.type not in (FD.TYPE_MESSAGE, FD.TYPE_GROUP) and not field.HasField("oneof_index")


_INT32 = (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32)
_UINT32 = (FD.TYPE_UINT32, FD.TYPE_FIXED32)
_INT64 = (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64, FD.TYPE_UINT64, FD.TYPE_FIXED64)


def _scalar(kind: int, direction: str) -> Json:
    if kind in _INT32 + _UINT32:
        low, high = (-(2**31), 2**31 - 1) if kind in _INT32 else (0, 2**32 - 1)
        # The transcoder refuses numbers out of range (400); a printed one is always in range.
        bounds = {"minimum": low, "maximum": high} if direction == "request" else {}
        return {"type": "integer", "format": "int32", **bounds}
    if kind in _INT64:
        # Printed as strings: JavaScript numbers cannot hold every 64-bit integer.
        text = {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
        return text if direction == "response" else {"type": ["string", "integer"]}
    if kind in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return {"type": "number"}
    if kind == FD.TYPE_BOOL:
        return {"type": "boolean"}
    if kind == FD.TYPE_STRING:
        return {"type": "string"}
    if kind == FD.TYPE_BYTES:
        return {"type": "string", "contentEncoding": "base64"}
    raise SystemExit(f"unsupported field type {kind}")


def _well_known(name: str, direction: str) -> Json | None:
    if name == "google.protobuf.Timestamp":
        return {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339, UTC (`Z`), with 0, 3, 6 or 9 fractional digits.",
        }
    if name == "google.protobuf.Struct":
        return {"type": "object", "additionalProperties": True}
    if name == "google.protobuf.Value":
        return {}
    if name == "google.protobuf.ListValue":
        return {"type": "array"}
    if name == "google.protobuf.Duration":
        return {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"}
    if name == "google.protobuf.Empty":
        return {"type": "object", "additionalProperties": direction == "request"}
    if name.startswith("google.protobuf.") and name.endswith("Value"):
        raise SystemExit(f"{name}: wrapper types are not used on this API")
    return None


# --- operations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Binding:
    verb: str
    template: str
    body: str


def _bindings(rule: http_pb2.HttpRule) -> Iterator[Binding]:
    for one in [rule, *rule.additional_bindings]:
        verb = one.WhichOneof("pattern")
        if verb is None or verb == "custom":
            raise SystemExit(f"unsupported http rule {one}")
        yield Binding(verb, getattr(one, verb), one.body)


def _access(method: Method) -> Access:
    if method.service == STATUS_SERVICE:
        return Access.PUBLIC
    module = importlib.import_module(f"services.{PUBLIC_ROUTES[method.service]}.api")
    overrides: dict[str, Access] = getattr(module, "ACCESS", {})
    return access_for(f"/{method.service}/{method.proto.name}", overrides)


def _path_params(template: str) -> tuple[str, list[str]]:
    """OpenAPI path and the request fields it binds (`{id}`, `{name=shelves/*}` -> `{name}`)."""
    names = re.findall(r"{([a-z_][a-z0-9_.]*)(?:=[^}]*)?}", template)
    path = re.sub(r"{([a-z_][a-z0-9_.]*)(?:=[^}]*)?}", r"{\1}", template)
    return path, names


def _operation_id(name: str, position: int) -> str:
    base = name[0].lower() + name[1:]
    return base if position == 0 else f"{base}Alias{position if position > 1 else ''}"


class Builder:
    def __init__(self, protos: Protos) -> None:
        self.protos = protos
        self.schemas = Schemas(protos)
        self.paths: dict[str, Json] = {}

    def build(self) -> Json:
        for method in sorted(self.protos.methods, key=lambda m: (m.service, m.proto.name)):
            rule = method.proto.options.Extensions[annotations_pb2.http]
            for position, binding in enumerate(_bindings(rule)):
                path, operation = self.operation(method, binding, position)
                self.paths.setdefault(path, {})[binding.verb] = operation
        schemas = {"Error": ERROR_SCHEMA, **dict(sorted(self.schemas.components.items()))}
        document: Json = {
            "openapi": "3.1.0",
            "info": {
                "title": "StudioX API",
                "version": "1.0.0",
                "description": INFO_DESCRIPTION,
                "license": {"name": "Proprietary", "identifier": "LicenseRef-StudioX-Proprietary"},
            },
            # Relative: the gateway serves this document itself (GET /api/openapi.json).
            "servers": [{"url": "/", "description": "the gateway serving this document"}],
            "tags": [
                {"name": tag, "description": self.protos.service_comments.get(service, "")}
                for service, tag in TAGS.items()
            ],
            "paths": dict(sorted(self.paths.items())),
            "components": {
                "schemas": schemas,
                "headers": {
                    "RequestId": {
                        "description": "The request's id in every log line (the client's own "
                        "`x-request-id` when it sent one).",
                        "schema": {"type": "string"},
                    }
                },
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "JWT",
                        "description": "A Clerk session token (RS256).",
                    },
                    "internalToken": {
                        "type": "apiKey",
                        "in": "header",
                        "name": "x-internal-token",
                        "description": "The internal service credential (workers only).",
                    },
                },
            },
        }
        return document

    def operation(self, method: Method, binding: Binding, position: int) -> tuple[str, Json]:
        request = self.protos.messages[method.proto.input_type.lstrip(".")]
        answers: contract_pb2.Answers = method.proto.options.Extensions[ANSWERS]
        access = _access(method)
        path, bound = _path_params(binding.template)
        fields = {f.name: (i, f) for i, f in enumerate(request.proto.field)}
        op_id = _operation_id(method.proto.name, position)
        summary, _, details = method.comment.partition(". ")
        operation: Json = {
            "operationId": op_id,
            "tags": [TAGS[method.service]],
            "summary": _summary(method.proto.name, summary),
        }
        if details:
            operation["description"] = details
        parameters: list[Json] = []
        for name in bound:
            index, field = fields[name]
            schema = self.schemas.field(field, "request")
            parameters.append(
                _parameter(name, "path", schema, request.comment(2, index), required=True)
            )
        if not binding.body:
            for name, (index, field) in fields.items():
                if name in bound:
                    continue
                if field.type in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
                    raise SystemExit(f"{request.name}.{name}: message fields in a query string")
                schema = self.schemas.field(field, "request")
                parameters.append(
                    _parameter(field.json_name, "query", schema, request.comment(2, index))
                )
        for header in answers.headers:
            text: Json = {"type": "string"}
            if header.max_length:
                text["maxLength"] = header.max_length
            parameters.append(
                _parameter(
                    header.name, "header", text, header.description, required=header.required
                )
            )
        if parameters:
            operation["parameters"] = parameters
        if binding.body:
            operation["requestBody"] = self.request_body(request, binding.body, frozenset(bound))
        operation["responses"] = self.responses(method, answers, access, binding, op_id)
        if access in (Access.USER, Access.ADMIN):
            operation["security"] = [{"bearerAuth": []}]
        elif access is Access.INTERNAL:
            operation["security"] = [{"internalToken": []}]
        else:
            operation["security"] = []
        return path, operation

    def request_body(self, request: Message, body: str, bound: frozenset[str]) -> Json:
        if body != "*":
            field = next(f for f in request.proto.field if f.name == body)
            if field.type_name != ".google.api.HttpBody":
                raise SystemExit(f"{request.name}: only body '*' or a google.api.HttpBody field")
            # google.api.HttpBody: the raw bytes reach the service untouched (Stripe signs them).
            return {
                "required": True,
                "description": "The raw event as Stripe sent it; its signature covers these bytes.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        if bound:
            # Fields bound by the path are not in the body: the body gets a schema of its own.
            key = f"{_short(request.name)}Body"
            self.schemas.components[key] = self.schemas.message(request, "request", skip=bound)
        else:
            key = self.schemas.ref(request.name, "request")["$ref"].rsplit("/", 1)[-1]
        schema = self.schemas.components[key]
        return {
            "required": bool(schema.get("required")),
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{key}"}}},
        }

    def responses(
        self,
        method: Method,
        answers: contract_pb2.Answers,
        access: Access,
        binding: Binding,
        op_id: str,
    ) -> Json:
        response = self.schemas.ref(method.proto.output_type, "response")
        example = EXAMPLES.get(op_id.split("Alias")[0], {})
        out: Json = {}
        for status in sorted(answers.success or [200]):
            content: Json = {"schema": response}
            if str(status) in example:
                content["example"] = example[str(status)]
            out[str(status)] = {
                "description": _success_text(status),
                "headers": {"x-request-id": {"$ref": "#/components/headers/RequestId"}},
                "content": {"application/json": content},
            }
        failures: dict[int, tuple[str, bool]] = {}
        shared = [400, 431, 503, 504]
        if access is not Access.PUBLIC:
            shared.append(401)
        if access is Access.INTERNAL:
            shared.append(403)
        if binding.body:
            shared.append(413)
        if binding.template != "/health":
            shared.append(429)
        for status in shared:
            failures[status] = (SHARED[status][0], False)
        for failure in answers.failures:
            failures[failure.status] = (failure.when, failure.response_body)
        for status in sorted(failures):
            text, carries_response = failures[status]
            schema: Json = {"$ref": "#/components/schemas/Error"}
            if carries_response:
                schema = {"oneOf": [response, schema]}
            sample = example.get(str(status), SHARED.get(status, ("", _reason(status)))[1])
            if isinstance(sample, str):
                sample = {"error": sample, "statusCode": status}
            out[str(status)] = {
                "description": text,
                "headers": {"x-request-id": {"$ref": "#/components/headers/RequestId"}},
                "content": {"application/json": {"schema": schema, "example": sample}},
            }
        return out


def _summary(name: str, comment: str) -> str:
    if comment and len(comment) <= 80:
        return comment.rstrip(".")
    words = re.findall(r"[A-Z][a-z]*", name)
    return " ".join([words[0], *(w.lower() for w in words[1:])])


def _success_text(status: int) -> str:
    return {200: "OK", 201: "Created"}.get(status, "Success")


def _reason(status: int) -> str:
    return {402: "Payment required", 404: "Not found", 409: "Conflict"}.get(status, "Error")


def _parameter(
    name: str, where: str, schema: Json, description: str, *, required: bool = False
) -> Json:
    parameter: Json = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


ERROR_SCHEMA: Json = {
    "type": "object",
    "description": "Every error, from a service or from the gateway itself.",
    "properties": {
        "error": {"type": "string", "minLength": 1, "description": "What went wrong, for people."},
        "statusCode": {"type": "integer", "description": "The HTTP status, repeated."},
    },
    "required": ["error", "statusCode"],
    "additionalProperties": False,
}


# --- examples ----------------------------------------------------------------------------------------


def check_examples(document: Json) -> None:
    """Every operation has a success example, and every example fits its schema."""
    registry: Registry[Any] = Registry().with_resource(
        "urn:studiox:openapi", Resource.from_contents(document, default_specification=DRAFT202012)
    )
    problems = []
    for path, operations in document["paths"].items():
        for verb, operation in operations.items():
            where = f"{verb.upper()} {path}"
            found = 0
            for status, response in operation["responses"].items():
                content = response["content"]["application/json"]
                if "example" not in content:
                    continue
                found += status.startswith("2")
                problems += _mismatches(registry, content["schema"], content["example"], where)
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and "example" in body:
                problems += _mismatches(registry, body["schema"], body["example"], where)
            if not found:
                problems.append(f"{where}: no success example in scripts/openapi_examples.py")
    if problems:
        raise SystemExit("examples do not fit the document:\n  " + "\n  ".join(problems))


def _mismatches(registry: Registry[Any], schema: Json, example: Any, where: str) -> list[str]:
    wrapped = {"$ref": "urn:studiox:openapi#" + schema["$ref"][1:]} if "$ref" in schema else schema
    wrapped = _absolute(wrapped)
    validator = Draft202012Validator(wrapped, registry=registry)
    return [f"{where}: {e.json_path}: {e.message}" for e in validator.iter_errors(example)]


def _absolute(schema: Any) -> Any:
    """References inside the document, made absolute so the registry can resolve them."""
    if isinstance(schema, dict):
        return {
            k: ("urn:studiox:openapi" + v if k == "$ref" and v.startswith("#") else _absolute(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute(v) for v in schema]
    return schema


def add_request_examples(document: Json) -> None:
    for operations in document["paths"].values():
        for operation in operations.values():
            example = EXAMPLES.get(operation["operationId"].split("Alias")[0], {})
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and "request" in example:
                body["example"] = copy.deepcopy(example["request"])


def render(descriptor: Path = DESCRIPTOR) -> str:
    builder = Builder(Protos(descriptor))
    document = builder.build()
    add_request_examples(document)
    check_examples(document)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--out", type=Path, default=DOCUMENT)
    parser.add_argument("--descriptor", type=Path, default=DESCRIPTOR)
    ns = parser.parse_args()
    text = render(ns.descriptor)
    if ns.check:
        if not ns.out.exists() or ns.out.read_text() != text:
            print(f"{ns.out.relative_to(ROOT)} is stale; run `make gen` and commit it")
            return 1
        print(f"{ns.out.relative_to(ROOT)} is up to date")
        return 0
    ns.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
