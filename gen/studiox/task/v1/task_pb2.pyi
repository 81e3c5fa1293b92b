import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from studiox.api.v1 import contract_pb2 as _contract_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_UNSPECIFIED: _ClassVar[TaskStatus]
    TASK_STATUS_PENDING: _ClassVar[TaskStatus]
    TASK_STATUS_PROCESSING: _ClassVar[TaskStatus]
    TASK_STATUS_DONE: _ClassVar[TaskStatus]
    TASK_STATUS_FAILED: _ClassVar[TaskStatus]
    TASK_STATUS_CANCELLED: _ClassVar[TaskStatus]
TASK_STATUS_UNSPECIFIED: TaskStatus
TASK_STATUS_PENDING: TaskStatus
TASK_STATUS_PROCESSING: TaskStatus
TASK_STATUS_DONE: TaskStatus
TASK_STATUS_FAILED: TaskStatus
TASK_STATUS_CANCELLED: TaskStatus

class Task(_message.Message):
    __slots__ = ("id", "user_id", "type", "status", "input_data", "output_data", "error", "credits_cost", "created_at", "updated_at", "completed_at", "credits_reserved", "usage", "credits_uncharged")
    class UsageEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INPUT_DATA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DATA_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREDITS_COST_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    CREDITS_RESERVED_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    CREDITS_UNCHARGED_FIELD_NUMBER: _ClassVar[int]
    id: str
    user_id: str
    type: str
    status: str
    input_data: _struct_pb2.Struct
    output_data: _struct_pb2.Struct
    error: str
    credits_cost: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    credits_reserved: int
    usage: _containers.ScalarMap[str, float]
    credits_uncharged: int
    def __init__(self, id: _Optional[str] = ..., user_id: _Optional[str] = ..., type: _Optional[str] = ..., status: _Optional[str] = ..., input_data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., output_data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[str] = ..., credits_cost: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., credits_reserved: _Optional[int] = ..., usage: _Optional[_Mapping[str, float]] = ..., credits_uncharged: _Optional[int] = ...) -> None: ...

class CreateTaskRequest(_message.Message):
    __slots__ = ("type", "input_data")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    INPUT_DATA_FIELD_NUMBER: _ClassVar[int]
    type: str
    input_data: _struct_pb2.Struct
    def __init__(self, type: _Optional[str] = ..., input_data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CreateTaskResponse(_message.Message):
    __slots__ = ("success", "message", "task", "credit_deducted", "remaining_credits")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    CREDIT_DEDUCTED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_CREDITS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    task: Task
    credit_deducted: int
    remaining_credits: int
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., task: _Optional[_Union[Task, _Mapping]] = ..., credit_deducted: _Optional[int] = ..., remaining_credits: _Optional[int] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("status", "limit", "cursor")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    status: str
    limit: int
    cursor: str
    def __init__(self, status: _Optional[str] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("success", "count", "tasks", "next_cursor")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    success: bool
    count: int
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    next_cursor: str
    def __init__(self, success: _Optional[bool] = ..., count: _Optional[int] = ..., tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class GetTaskStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TaskStats(_message.Message):
    __slots__ = ("total", "pending", "processing", "done", "failed", "cancelled", "by_type")
    class ByTypeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    BY_TYPE_FIELD_NUMBER: _ClassVar[int]
    total: int
    pending: int
    processing: int
    done: int
    failed: int
    cancelled: int
    by_type: _containers.ScalarMap[str, int]
    def __init__(self, total: _Optional[int] = ..., pending: _Optional[int] = ..., processing: _Optional[int] = ..., done: _Optional[int] = ..., failed: _Optional[int] = ..., cancelled: _Optional[int] = ..., by_type: _Optional[_Mapping[str, int]] = ...) -> None: ...

class GetTaskStatsResponse(_message.Message):
    __slots__ = ("success", "stats")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    stats: TaskStats
    def __init__(self, success: _Optional[bool] = ..., stats: _Optional[_Union[TaskStats, _Mapping]] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("success", "task")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    success: bool
    task: Task
    def __init__(self, success: _Optional[bool] = ..., task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CancelTaskResponse(_message.Message):
    __slots__ = ("success", "message", "task", "refund_applied")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    REFUND_APPLIED_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    task: Task
    refund_applied: bool
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., task: _Optional[_Union[Task, _Mapping]] = ..., refund_applied: _Optional[bool] = ...) -> None: ...

class UpdateStatusRequest(_message.Message):
    __slots__ = ("id", "status", "output_data", "error", "usage")
    class UsageEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DATA_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: str
    output_data: _struct_pb2.Struct
    error: str
    usage: _containers.ScalarMap[str, float]
    def __init__(self, id: _Optional[str] = ..., status: _Optional[str] = ..., output_data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., error: _Optional[str] = ..., usage: _Optional[_Mapping[str, float]] = ...) -> None: ...

class UpdateStatusResponse(_message.Message):
    __slots__ = ("success", "task")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    success: bool
    task: Task
    def __init__(self, success: _Optional[bool] = ..., task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class ClaimPendingRequest(_message.Message):
    __slots__ = ("limit", "lease_seconds", "worker_id")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    limit: int
    lease_seconds: int
    worker_id: str
    def __init__(self, limit: _Optional[int] = ..., lease_seconds: _Optional[int] = ..., worker_id: _Optional[str] = ...) -> None: ...

class ClaimPendingResponse(_message.Message):
    __slots__ = ("tasks", "requeued", "failed")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    REQUEUED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    requeued: int
    failed: int
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., requeued: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("id", "worker_id", "lease_seconds")
    ID_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    worker_id: str
    lease_seconds: int
    def __init__(self, id: _Optional[str] = ..., worker_id: _Optional[str] = ..., lease_seconds: _Optional[int] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("lease_expires_at",)
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    lease_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, lease_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RepairOrphansRequest(_message.Message):
    __slots__ = ("min_age_seconds",)
    MIN_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    min_age_seconds: int
    def __init__(self, min_age_seconds: _Optional[int] = ...) -> None: ...

class RepairOrphansResponse(_message.Message):
    __slots__ = ("charged", "rejected", "refunded", "settled")
    CHARGED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_FIELD_NUMBER: _ClassVar[int]
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    charged: int
    rejected: int
    refunded: int
    settled: int
    def __init__(self, charged: _Optional[int] = ..., rejected: _Optional[int] = ..., refunded: _Optional[int] = ..., settled: _Optional[int] = ...) -> None: ...

class QuoteTaskRequest(_message.Message):
    __slots__ = ("type",)
    TYPE_FIELD_NUMBER: _ClassVar[int]
    type: str
    def __init__(self, type: _Optional[str] = ...) -> None: ...

class QuoteTaskResponse(_message.Message):
    __slots__ = ("success", "type", "cost", "allowed", "reason", "message", "available_credits", "plan_name", "is_unlimited", "rule")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_CREDITS_FIELD_NUMBER: _ClassVar[int]
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    IS_UNLIMITED_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    type: str
    cost: int
    allowed: bool
    reason: str
    message: str
    available_credits: int
    plan_name: str
    is_unlimited: bool
    rule: PriceRule
    def __init__(self, success: _Optional[bool] = ..., type: _Optional[str] = ..., cost: _Optional[int] = ..., allowed: _Optional[bool] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., available_credits: _Optional[int] = ..., plan_name: _Optional[str] = ..., is_unlimited: _Optional[bool] = ..., rule: _Optional[_Union[PriceRule, _Mapping]] = ...) -> None: ...

class ListTaskTypesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TaskType(_message.Message):
    __slots__ = ("type", "cost", "rule")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    type: str
    cost: int
    rule: PriceRule
    def __init__(self, type: _Optional[str] = ..., cost: _Optional[int] = ..., rule: _Optional[_Union[PriceRule, _Mapping]] = ...) -> None: ...

class PriceRule(_message.Message):
    __slots__ = ("base", "rate_per_unit", "unit", "input_field", "maximum", "flat_price")
    BASE_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_UNIT_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    FLAT_PRICE_FIELD_NUMBER: _ClassVar[int]
    base: int
    rate_per_unit: str
    unit: str
    input_field: str
    maximum: int
    flat_price: int
    def __init__(self, base: _Optional[int] = ..., rate_per_unit: _Optional[str] = ..., unit: _Optional[str] = ..., input_field: _Optional[str] = ..., maximum: _Optional[int] = ..., flat_price: _Optional[int] = ...) -> None: ...

class ListTaskTypesResponse(_message.Message):
    __slots__ = ("types",)
    TYPES_FIELD_NUMBER: _ClassVar[int]
    types: _containers.RepeatedCompositeFieldContainer[TaskType]
    def __init__(self, types: _Optional[_Iterable[_Union[TaskType, _Mapping]]] = ...) -> None: ...
