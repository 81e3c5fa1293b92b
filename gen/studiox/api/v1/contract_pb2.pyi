from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
ANSWERS_FIELD_NUMBER: _ClassVar[int]
answers: _descriptor.FieldDescriptor
FIELD_FIELD_NUMBER: _ClassVar[int]
field: _descriptor.FieldDescriptor

class Answers(_message.Message):
    __slots__ = ("success", "failures", "headers")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    success: _containers.RepeatedScalarFieldContainer[int]
    failures: _containers.RepeatedCompositeFieldContainer[Failure]
    headers: _containers.RepeatedCompositeFieldContainer[Header]
    def __init__(self, success: _Optional[_Iterable[int]] = ..., failures: _Optional[_Iterable[_Union[Failure, _Mapping]]] = ..., headers: _Optional[_Iterable[_Union[Header, _Mapping]]] = ...) -> None: ...

class Failure(_message.Message):
    __slots__ = ("status", "when", "response_body")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    WHEN_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_BODY_FIELD_NUMBER: _ClassVar[int]
    status: int
    when: str
    response_body: bool
    def __init__(self, status: _Optional[int] = ..., when: _Optional[str] = ..., response_body: _Optional[bool] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("name", "description", "required", "max_length")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    required: bool
    max_length: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., required: _Optional[bool] = ..., max_length: _Optional[int] = ...) -> None: ...

class Field(_message.Message):
    __slots__ = ("values", "required", "minimum", "maximum", "max_length", "format")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    required: bool
    minimum: int
    maximum: int
    max_length: int
    format: str
    def __init__(self, values: _Optional[_Iterable[str]] = ..., required: _Optional[bool] = ..., minimum: _Optional[int] = ..., maximum: _Optional[int] = ..., max_length: _Optional[int] = ..., format: _Optional[str] = ...) -> None: ...
