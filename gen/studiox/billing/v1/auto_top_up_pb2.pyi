from google.api import annotations_pb2 as _annotations_pb2
from studiox.api.v1 import contract_pb2 as _contract_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetAutoTopUpRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PutAutoTopUpRequest(_message.Message):
    __slots__ = ("enabled", "threshold", "pack_id")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PACK_ID_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    threshold: int
    pack_id: str
    def __init__(self, enabled: _Optional[bool] = ..., threshold: _Optional[int] = ..., pack_id: _Optional[str] = ...) -> None: ...

class GetAutoTopUpResponse(_message.Message):
    __slots__ = ("auto_top_up",)
    AUTO_TOP_UP_FIELD_NUMBER: _ClassVar[int]
    auto_top_up: AutoTopUp
    def __init__(self, auto_top_up: _Optional[_Union[AutoTopUp, _Mapping]] = ...) -> None: ...

class PutAutoTopUpResponse(_message.Message):
    __slots__ = ("auto_top_up",)
    AUTO_TOP_UP_FIELD_NUMBER: _ClassVar[int]
    auto_top_up: AutoTopUp
    def __init__(self, auto_top_up: _Optional[_Union[AutoTopUp, _Mapping]] = ...) -> None: ...

class AutoTopUp(_message.Message):
    __slots__ = ("enabled", "threshold", "pack_id", "has_payment_method", "armed", "failures", "disabled_reason", "setup_url")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PACK_ID_FIELD_NUMBER: _ClassVar[int]
    HAS_PAYMENT_METHOD_FIELD_NUMBER: _ClassVar[int]
    ARMED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    DISABLED_REASON_FIELD_NUMBER: _ClassVar[int]
    SETUP_URL_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    threshold: int
    pack_id: str
    has_payment_method: bool
    armed: bool
    failures: int
    disabled_reason: str
    setup_url: str
    def __init__(self, enabled: _Optional[bool] = ..., threshold: _Optional[int] = ..., pack_id: _Optional[str] = ..., has_payment_method: _Optional[bool] = ..., armed: _Optional[bool] = ..., failures: _Optional[int] = ..., disabled_reason: _Optional[str] = ..., setup_url: _Optional[str] = ...) -> None: ...

class RunTopUpRequest(_message.Message):
    __slots__ = ("user_id", "crossing_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CROSSING_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    crossing_id: int
    def __init__(self, user_id: _Optional[str] = ..., crossing_id: _Optional[int] = ...) -> None: ...

class RunTopUpResponse(_message.Message):
    __slots__ = ("outcome", "detail")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    outcome: str
    detail: str
    def __init__(self, outcome: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...
