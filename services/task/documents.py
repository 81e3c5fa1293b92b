"""A task's JSON documents (input, output, measured usage) as fields of studiox.task.v1.Task.

One definition serves both ways a reply gets them: `set_documents` fills a message from the
documents (a single task, read from the jsonb columns), and the `encode_*` functions give the same
fields in protobuf's wire encoding, which the store keeps beside each jsonb column (`*_pb`) so a
list page merges stored bytes instead of decoding JSON and building Structs per task
(docs/PERFORMANCE.md, phase 3). Protobuf's wire format concatenates: a message parsed from the
three encodings one after another holds all three fields.

An encoding holds the document as the jsonb column keeps it, which is the document as sent except
for one number: jsonb has no negative zero (-0.0 is stored as 0). Every other finite double comes
back from jsonb bit for bit (checked over 20,000 random doubles, subnormals included).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2

from studiox.task.v1 import task_pb2


def set_documents(
    message: task_pb2.Task,
    input_data: Mapping[str, Any],
    output_data: Mapping[str, Any] | None,
    usage: Mapping[str, float] | None,
) -> None:
    _set_struct(message.input_data, input_data)
    if output_data is not None:
        _set_struct(message.output_data, output_data)
    if usage:
        message.usage.update(usage)


def encode_input(input_data: Mapping[str, Any]) -> bytes:
    message = task_pb2.Task()
    _set_struct(message.input_data, as_stored(input_data))
    return message.SerializeToString()


def encode_output(output_data: Mapping[str, Any] | None) -> bytes | None:
    """None when there is no output (the column keeps what it had, as output_data does)."""
    if output_data is None:
        return None
    message = task_pb2.Task()
    _set_struct(message.output_data, as_stored(output_data))
    return message.SerializeToString()


def encode_usage(usage: Mapping[str, float]) -> bytes:
    """Empty for no usage: the field is absent, as set_documents leaves it."""
    message = task_pb2.Task()
    message.usage.update(as_stored(usage))
    return message.SerializeToString()


def _set_struct(field: struct_pb2.Struct, document: Mapping[str, Any]) -> None:
    field.SetInParent()  # present even when empty: `{}`, not absent
    field.update(document)


def as_stored(value: Any) -> Any:
    """A JSON value as jsonb gives it back: negative zeros as 0."""
    if isinstance(value, float):
        return 0.0 if value == 0 else value
    if isinstance(value, Mapping):
        return {key: as_stored(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_stored(item) for item in value]
    return value
