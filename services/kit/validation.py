"""Every request is checked here, at the service boundary, before a servicer sees it.

The interceptor (services.kit.server) applies `check_request` to each decoded request after access
control, so every RPC of every service gets the same guarantees without opting in:

- strings hold no NUL (PostgreSQL refuses it in text and jsonb) and are at most `max_length`
  characters: the field's `(studiox.api.v1.field).max_length` when the proto declares one,
  MAX_TEXT_LENGTH otherwise; declared `minimum`/`maximum` bound integers;
- google.protobuf.Struct/Value/ListValue (JSON) nest at most MAX_JSON_DEPTH levels, hold no NUL
  in keys or strings, only finite numbers, and at most MAX_JSON_BYTES of canonical JSON;
- timestamps lie in years 1..9999.

Bytes the protobuf decoder refuses (deeper than its own limit, invalid UTF-8 in a string) reach the
interceptor as `Undecodable` instead of failing inside gRPC (which answers INTERNAL); they are refused
with the top-level field named. Every refusal is InvalidInput (400) or PayloadTooLarge (413) naming
the field by its JSON name and never echoing the value. Rules with meaning (an email's shape, a
limit's default) stay in the services' domain code, using the helpers below.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any, cast

from google.protobuf import descriptor_pool, empty_pb2, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from services.kit.errors import DomainError, InvalidInput, PayloadTooLarge

# Characters of a string field that declares no max_length.
MAX_TEXT_LENGTH = 1024
# Nesting of a JSON value, the value itself being level 1 (`{}` is 1, `{"a": []}` is 2). Envoy's
# transcoder prints at most 100 protobuf levels, and a JSON object costs 3 (Struct, map entry,
# Value) under the Task inside a response: 32 is the deepest object a response can still carry, so
# nothing is accepted that could not be shown back (33 was charged, then answered 502).
MAX_JSON_DEPTH = 32
# Canonical JSON (sorted keys, no spaces, ASCII escapes) of one JSON field.
MAX_JSON_BYTES = 64 * 1024
# Characters of user input a message may quote.
MAX_EXCERPT = 40

_JSON_TYPES = frozenset(
    {
        struct_pb2.Struct.DESCRIPTOR.full_name,
        struct_pb2.Value.DESCRIPTOR.full_name,
        struct_pb2.ListValue.DESCRIPTOR.full_name,
    }
)
_TIMESTAMP = timestamp_pb2.Timestamp.DESCRIPTOR.full_name
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799  # 0001-01-01 .. 9999-12-31
# Nesting (protobuf levels) past which undecodable bytes are not searched any deeper.
_MAX_DIAGNOSE_DEPTH = 128


# --- helpers for domain code ---------------------------------------------------------------------


def excerpt(value: str, limit: int = MAX_EXCERPT) -> str:
    """The start of a user-supplied value, short enough to quote in an error message."""
    return value if len(value) <= limit else value[:limit] + "…"


def text(
    value: str, field: str, *, max_length: int = MAX_TEXT_LENGTH, required: bool = False
) -> str:
    if required and not value:
        raise InvalidInput(f"{field} is required")
    if "\x00" in value:
        raise InvalidInput(f"{field} must not contain NUL characters")
    if len(value) > max_length:
        raise InvalidInput(f"{field} must be at most {max_length} characters")
    return value


def integer(value: int, field: str, *, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidInput(f"{field} must be between {low} and {high}")
    return value


def canonical_json(value: Any, field: str, *, max_bytes: int = MAX_JSON_BYTES) -> str:
    """`value` as canonical JSON; PayloadTooLarge when it exceeds `max_bytes`."""
    encoded = json.dumps(value, separators=(",", ":"), sort_keys=True)
    if len(encoded) > max_bytes:  # ASCII only: characters are bytes
        raise PayloadTooLarge(f"{field} must be at most {max_bytes} bytes")
    return encoded


def json_value(message: Message) -> Any:
    """A checked Struct/Value/ListValue as plain Python (numbers as float, like json_format)."""
    return _json(message, "value", 1)


_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")


def request_id(value: str | None) -> str | None:
    """A caller's x-request-id if it is safe to log and to pass on as gRPC metadata (visible ASCII,
    at most 128 characters); None otherwise. (A Latin-1 id once reached a downstream call, which
    refused the non-ASCII metadata: a 500.)"""
    return value if value is not None and _REQUEST_ID.fullmatch(value) else None


# --- the boundary check --------------------------------------------------------------------------


def check_request(request: Any) -> None:
    """Raises InvalidInput/PayloadTooLarge naming the first field that breaks a rule above."""
    if isinstance(request, Undecodable):
        raise request.error()
    # Handlers registered without a protobuf deserializer (raw bytes) have no fields to check.
    if isinstance(request, Message):
        _check_message(request, "")


def _check_message(message: Message, prefix: str) -> None:
    for field, value in message.ListFields():
        name = prefix + field.json_name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry = field.message_type.fields_by_number
            key_field, value_field = entry[1], entry[2]
            for key, item in value.items():
                _check_scalar(key_field, key, name)
                _check_single(value_field, item, name)
        elif field.is_repeated:
            for item in value:
                _check_single(field, item, name)
        else:
            _check_single(field, value, name)


def _check_single(field: FieldDescriptor, value: Any, name: str) -> None:
    if field.message_type is None:
        _check_scalar(field, value, name)
    elif field.message_type.full_name in _JSON_TYPES:
        canonical_json(_json(value, name, 1), name)
    elif field.message_type.full_name == _TIMESTAMP:
        if not (_MIN_SECONDS <= value.seconds <= _MAX_SECONDS and 0 <= value.nanos < 10**9):
            raise InvalidInput(f"{name} is out of range")
    else:
        _check_message(value, name + ".")


def _check_scalar(field: FieldDescriptor, value: Any, name: str) -> None:
    max_length, low, high = _declared(field)
    if field.type == FieldDescriptor.TYPE_STRING:
        text(value, name, max_length=max_length)
    elif isinstance(value, int) and not isinstance(value, bool):
        if low is not None and high is not None and not low <= value <= high:
            raise InvalidInput(f"{name} must be between {low} and {high}")
        if low is not None and value < low:
            raise InvalidInput(f"{name} must be at least {low}")
        if high is not None and value > high:
            raise InvalidInput(f"{name} must be at most {high}")


@lru_cache(maxsize=4096)
def _declared(field: FieldDescriptor) -> tuple[int, int | None, int | None]:
    """(max_length, minimum, maximum) from the field's `(studiox.api.v1.field)` annotation, which
    also documents them in the OpenAPI document."""
    extension = _contract_extension()
    if extension is None:
        return MAX_TEXT_LENGTH, None, None
    options = field.GetOptions()
    if not options.HasExtension(extension):
        return MAX_TEXT_LENGTH, None, None
    declared: Any = options.Extensions[extension]
    return (
        declared.max_length if declared.HasField("max_length") else MAX_TEXT_LENGTH,
        declared.minimum if declared.HasField("minimum") else None,
        declared.maximum if declared.HasField("maximum") else None,
    )


@lru_cache(maxsize=1)
def _contract_extension() -> Any:
    try:
        return descriptor_pool.Default().FindExtensionByName("studiox.api.v1.field")
    except KeyError:  # protos without contract annotations: defaults only
        return None


def _json(value: Message, name: str, depth: int) -> Any:
    """`value` (Struct, ListValue or Value) as Python; `depth` is the level of a Struct/ListValue."""
    if depth > MAX_JSON_DEPTH:
        raise InvalidInput(f"{name} must not be nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, struct_pb2.Struct):
        result = {}
        for key, item in value.fields.items():
            if "\x00" in key:
                raise InvalidInput(f"{name} must not contain NUL characters")
            result[key] = _json_item(item, name, depth)
        return result
    if isinstance(value, struct_pb2.ListValue):
        return [_json_item(item, name, depth) for item in value.values]
    return _json_item(cast(struct_pb2.Value, value), name, depth - 1)


def _json_item(value: struct_pb2.Value, name: str, depth: int) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        if "\x00" in value.string_value:
            raise InvalidInput(f"{name} must not contain NUL characters")
        return value.string_value
    if kind == "number_value":
        if not math.isfinite(value.number_value):
            raise InvalidInput(f"{name} must hold finite numbers only")
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "null_value":
        return None
    if kind == "struct_value":
        return _json(value.struct_value, name, depth + 1)
    if kind == "list_value":
        return _json(value.list_value, name, depth + 1)
    raise InvalidInput(f"{name} holds a value without a type")


# --- bytes the decoder refused -------------------------------------------------------------------


class Undecodable:
    """Stands in for a request whose bytes protobuf refused, so the refusal is answered as a 400
    after access control instead of failing inside gRPC's deserializer (an INTERNAL error)."""

    __slots__ = ("data", "descriptor")

    def __init__(self, descriptor: Descriptor | None, data: bytes) -> None:
        self.descriptor = descriptor
        self.data = data

    def error(self) -> DomainError:
        if self.descriptor is not None:
            problem = _first_problem(self.descriptor, self.data)
            if problem is not None:
                return InvalidInput(problem)
        return InvalidInput("The request could not be read")


def tolerant(
    deserializer: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    """Wraps a handler's request deserializer (`Message.FromString`): protobuf's refusal becomes an
    Undecodable, for check_request to name."""
    if deserializer is None:
        return None
    message_class = getattr(deserializer, "__self__", None)
    descriptor = getattr(message_class, "DESCRIPTOR", None)

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return Undecodable(descriptor, data)

    return deserialize


def _first_problem(descriptor: Descriptor, data: bytes) -> str | None:
    """Which top-level field made the decoder give up: one holding invalid UTF-8 somewhere, else the
    most deeply nested one."""
    deepest: tuple[int, str] | None = None
    for field, payload in _length_delimited(descriptor, data):
        name = field.json_name
        if field.type == FieldDescriptor.TYPE_STRING:
            if not _is_utf8(payload):
                return f"{name} must be valid UTF-8"
        elif field.message_type is not None:
            depth, utf8_ok = _scan(field.message_type, payload, 1)
            if not utf8_ok:
                return f"{name} must be valid UTF-8"
            if deepest is None or depth > deepest[0]:
                deepest = (depth, name)
    if deepest is None:
        return None
    return f"{deepest[1]} must not be nested deeper than {MAX_JSON_DEPTH} levels"


def _scan(descriptor: Descriptor, data: bytes, level: int) -> tuple[int, bool]:
    """(protobuf nesting below here, whether every string is UTF-8), without decoding into messages,
    so nothing limits the depth but _MAX_DIAGNOSE_DEPTH."""
    if level > _MAX_DIAGNOSE_DEPTH:
        return level, True
    deepest = level
    for field, payload in _length_delimited(descriptor, data):
        if field.type == FieldDescriptor.TYPE_STRING:
            if not _is_utf8(payload):
                return deepest, False
        elif field.message_type is not None:
            depth, utf8_ok = _scan(field.message_type, payload, level + 1)
            if not utf8_ok:
                return depth, False
            deepest = max(deepest, depth)
    return deepest, True


def _length_delimited(descriptor: Descriptor, data: bytes) -> list[tuple[FieldDescriptor, bytes]]:
    """Known length-delimited fields of `data` (parsed as unknown fields of Empty: no recursion)."""
    try:
        holder = empty_pb2.Empty.FromString(data)
    except DecodeError:
        return []
    found = []
    for unknown in cast(Iterable[Any], UnknownFieldSet(holder)):
        field = descriptor.fields_by_number.get(unknown.field_number)
        if field is not None and isinstance(unknown.data, bytes):
            found.append((field, unknown.data))
    return found


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
