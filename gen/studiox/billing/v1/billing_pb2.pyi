import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from studiox.api.v1 import contract_pb2 as _contract_pb2
from studiox.task.v1 import task_pb2 as _task_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Plan(_message.Message):
    __slots__ = ("id", "name", "price", "currency", "interval", "monthly_credits", "is_unlimited", "features")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_CREDITS_FIELD_NUMBER: _ClassVar[int]
    IS_UNLIMITED_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    price: int
    currency: str
    interval: str
    monthly_credits: int
    is_unlimited: bool
    features: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., price: _Optional[int] = ..., currency: _Optional[str] = ..., interval: _Optional[str] = ..., monthly_credits: _Optional[int] = ..., is_unlimited: _Optional[bool] = ..., features: _Optional[_Iterable[str]] = ...) -> None: ...

class CreditPack(_message.Message):
    __slots__ = ("id", "credits", "price", "currency", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    credits: int
    price: int
    currency: str
    name: str
    def __init__(self, id: _Optional[str] = ..., credits: _Optional[int] = ..., price: _Optional[int] = ..., currency: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Payment(_message.Message):
    __slots__ = ("id", "amount", "currency", "status", "kind", "credits", "plan_name", "created_at", "refunded_amount", "dispute_status", "credits_clawed_back")
    ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DISPUTE_STATUS_FIELD_NUMBER: _ClassVar[int]
    CREDITS_CLAWED_BACK_FIELD_NUMBER: _ClassVar[int]
    id: str
    amount: int
    currency: str
    status: str
    kind: str
    credits: int
    plan_name: str
    created_at: _timestamp_pb2.Timestamp
    refunded_amount: int
    dispute_status: str
    credits_clawed_back: int
    def __init__(self, id: _Optional[str] = ..., amount: _Optional[int] = ..., currency: _Optional[str] = ..., status: _Optional[str] = ..., kind: _Optional[str] = ..., credits: _Optional[int] = ..., plan_name: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., refunded_amount: _Optional[int] = ..., dispute_status: _Optional[str] = ..., credits_clawed_back: _Optional[int] = ...) -> None: ...

class ListPlansRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPricesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TaskPrice(_message.Message):
    __slots__ = ("type", "cost", "plans", "rule")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    PLANS_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    type: str
    cost: int
    plans: _containers.RepeatedScalarFieldContainer[str]
    rule: _task_pb2.PriceRule
    def __init__(self, type: _Optional[str] = ..., cost: _Optional[int] = ..., plans: _Optional[_Iterable[str]] = ..., rule: _Optional[_Union[_task_pb2.PriceRule, _Mapping]] = ...) -> None: ...

class ListPricesResponse(_message.Message):
    __slots__ = ("success", "prices")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    PRICES_FIELD_NUMBER: _ClassVar[int]
    success: bool
    prices: _containers.RepeatedCompositeFieldContainer[TaskPrice]
    def __init__(self, success: _Optional[bool] = ..., prices: _Optional[_Iterable[_Union[TaskPrice, _Mapping]]] = ...) -> None: ...

class ListPlansResponse(_message.Message):
    __slots__ = ("success", "plans", "credit_packs")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    PLANS_FIELD_NUMBER: _ClassVar[int]
    CREDIT_PACKS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    plans: _containers.RepeatedCompositeFieldContainer[Plan]
    credit_packs: _containers.RepeatedCompositeFieldContainer[CreditPack]
    def __init__(self, success: _Optional[bool] = ..., plans: _Optional[_Iterable[_Union[Plan, _Mapping]]] = ..., credit_packs: _Optional[_Iterable[_Union[CreditPack, _Mapping]]] = ...) -> None: ...

class PurchaseCreditsRequest(_message.Message):
    __slots__ = ("pack_id", "credits", "payment_method_id")
    PACK_ID_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_ID_FIELD_NUMBER: _ClassVar[int]
    pack_id: str
    credits: int
    payment_method_id: str
    def __init__(self, pack_id: _Optional[str] = ..., credits: _Optional[int] = ..., payment_method_id: _Optional[str] = ...) -> None: ...

class PurchaseCreditsResponse(_message.Message):
    __slots__ = ("success", "checkout_url", "session_id", "payment_intent_id", "status", "credits", "client_secret")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    CHECKOUT_URL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_INTENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    success: bool
    checkout_url: str
    session_id: str
    payment_intent_id: str
    status: str
    credits: int
    client_secret: str
    def __init__(self, success: _Optional[bool] = ..., checkout_url: _Optional[str] = ..., session_id: _Optional[str] = ..., payment_intent_id: _Optional[str] = ..., status: _Optional[str] = ..., credits: _Optional[int] = ..., client_secret: _Optional[str] = ...) -> None: ...

class UpgradePlanRequest(_message.Message):
    __slots__ = ("plan_name",)
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    plan_name: str
    def __init__(self, plan_name: _Optional[str] = ...) -> None: ...

class UpgradePlanResponse(_message.Message):
    __slots__ = ("success", "message", "checkout_url", "session_id", "status", "effective_at", "plan_name")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CHECKOUT_URL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_AT_FIELD_NUMBER: _ClassVar[int]
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    checkout_url: str
    session_id: str
    status: str
    effective_at: _timestamp_pb2.Timestamp
    plan_name: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., checkout_url: _Optional[str] = ..., session_id: _Optional[str] = ..., status: _Optional[str] = ..., effective_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., plan_name: _Optional[str] = ...) -> None: ...

class ListPaymentsRequest(_message.Message):
    __slots__ = ("limit", "cursor")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    limit: int
    cursor: str
    def __init__(self, limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class ListPaymentsResponse(_message.Message):
    __slots__ = ("success", "count", "payments", "next_cursor")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    PAYMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    success: bool
    count: int
    payments: _containers.RepeatedCompositeFieldContainer[Payment]
    next_cursor: str
    def __init__(self, success: _Optional[bool] = ..., count: _Optional[int] = ..., payments: _Optional[_Iterable[_Union[Payment, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class HandleWebhookRequest(_message.Message):
    __slots__ = ("body",)
    BODY_FIELD_NUMBER: _ClassVar[int]
    body: _httpbody_pb2.HttpBody
    def __init__(self, body: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class HandleWebhookResponse(_message.Message):
    __slots__ = ("received",)
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    received: bool
    def __init__(self, received: _Optional[bool] = ...) -> None: ...

class GetPlanRequest(_message.Message):
    __slots__ = ("plan_id",)
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    plan_id: str
    def __init__(self, plan_id: _Optional[str] = ...) -> None: ...

class GetPlanResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: Plan
    def __init__(self, plan: _Optional[_Union[Plan, _Mapping]] = ...) -> None: ...
