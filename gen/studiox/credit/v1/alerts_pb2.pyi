import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from studiox.api.v1 import contract_pb2 as _contract_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListAlertsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class SetAlertThresholdRequest(_message.Message):
    __slots__ = ("threshold", "use_plan_default")
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    USE_PLAN_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    threshold: int
    use_plan_default: bool
    def __init__(self, threshold: _Optional[int] = ..., use_plan_default: _Optional[bool] = ...) -> None: ...

class SetAlertThresholdResponse(_message.Message):
    __slots__ = ("threshold", "plan_default")
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PLAN_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    threshold: int
    plan_default: bool
    def __init__(self, threshold: _Optional[int] = ..., plan_default: _Optional[bool] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("id", "kind", "message", "balance", "threshold", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    message: str
    balance: int
    threshold: int
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., message: _Optional[str] = ..., balance: _Optional[int] = ..., threshold: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAlertsResponse(_message.Message):
    __slots__ = ("alerts",)
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    def __init__(self, alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ...) -> None: ...

class SetTopUpThresholdRequest(_message.Message):
    __slots__ = ("user_id", "threshold")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    threshold: int
    def __init__(self, user_id: _Optional[str] = ..., threshold: _Optional[int] = ...) -> None: ...

class SetTopUpThresholdResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RaiseAlertRequest(_message.Message):
    __slots__ = ("user_id", "kind", "message", "source_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    kind: str
    message: str
    source_key: str
    def __init__(self, user_id: _Optional[str] = ..., kind: _Optional[str] = ..., message: _Optional[str] = ..., source_key: _Optional[str] = ...) -> None: ...

class RaiseAlertResponse(_message.Message):
    __slots__ = ("applied",)
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    def __init__(self, applied: _Optional[bool] = ...) -> None: ...

class PendingTopUpsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class TopUpCrossing(_message.Message):
    __slots__ = ("id", "user_id", "balance", "threshold")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    id: int
    user_id: str
    balance: int
    threshold: int
    def __init__(self, id: _Optional[int] = ..., user_id: _Optional[str] = ..., balance: _Optional[int] = ..., threshold: _Optional[int] = ...) -> None: ...

class PendingTopUpsResponse(_message.Message):
    __slots__ = ("crossings",)
    CROSSINGS_FIELD_NUMBER: _ClassVar[int]
    crossings: _containers.RepeatedCompositeFieldContainer[TopUpCrossing]
    def __init__(self, crossings: _Optional[_Iterable[_Union[TopUpCrossing, _Mapping]]] = ...) -> None: ...

class FinishTopUpRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class FinishTopUpResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WarnExpiringRequest(_message.Message):
    __slots__ = ("within_hours", "limit")
    WITHIN_HOURS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    within_hours: int
    limit: int
    def __init__(self, within_hours: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class WarnExpiringResponse(_message.Message):
    __slots__ = ("warned",)
    WARNED_FIELD_NUMBER: _ClassVar[int]
    warned: int
    def __init__(self, warned: _Optional[int] = ...) -> None: ...
