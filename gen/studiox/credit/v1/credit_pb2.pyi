import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from studiox.api.v1 import contract_pb2 as _contract_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Bucket(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUCKET_UNSPECIFIED: _ClassVar[Bucket]
    BUCKET_ALLOWANCE: _ClassVar[Bucket]
    BUCKET_PURCHASED: _ClassVar[Bucket]
BUCKET_UNSPECIFIED: Bucket
BUCKET_ALLOWANCE: Bucket
BUCKET_PURCHASED: Bucket

class Credits(_message.Message):
    __slots__ = ("user_id", "current_credits", "allowance_credits", "purchased_credits", "monthly_allowance", "plan_name", "is_unlimited", "credits_used_this_month", "credit_reset_at", "grants", "bonus_credits", "owed_credits", "reserved_credits", "available_credits")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENT_CREDITS_FIELD_NUMBER: _ClassVar[int]
    ALLOWANCE_CREDITS_FIELD_NUMBER: _ClassVar[int]
    PURCHASED_CREDITS_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_ALLOWANCE_FIELD_NUMBER: _ClassVar[int]
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    IS_UNLIMITED_FIELD_NUMBER: _ClassVar[int]
    CREDITS_USED_THIS_MONTH_FIELD_NUMBER: _ClassVar[int]
    CREDIT_RESET_AT_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    BONUS_CREDITS_FIELD_NUMBER: _ClassVar[int]
    OWED_CREDITS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_CREDITS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_CREDITS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    current_credits: int
    allowance_credits: int
    purchased_credits: int
    monthly_allowance: int
    plan_name: str
    is_unlimited: bool
    credits_used_this_month: int
    credit_reset_at: _timestamp_pb2.Timestamp
    grants: _containers.RepeatedCompositeFieldContainer[CreditGrant]
    bonus_credits: int
    owed_credits: int
    reserved_credits: int
    available_credits: int
    def __init__(self, user_id: _Optional[str] = ..., current_credits: _Optional[int] = ..., allowance_credits: _Optional[int] = ..., purchased_credits: _Optional[int] = ..., monthly_allowance: _Optional[int] = ..., plan_name: _Optional[str] = ..., is_unlimited: _Optional[bool] = ..., credits_used_this_month: _Optional[int] = ..., credit_reset_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., grants: _Optional[_Iterable[_Union[CreditGrant, _Mapping]]] = ..., bonus_credits: _Optional[int] = ..., owed_credits: _Optional[int] = ..., reserved_credits: _Optional[int] = ..., available_credits: _Optional[int] = ...) -> None: ...

class CreditGrant(_message.Message):
    __slots__ = ("id", "category", "amount", "remaining", "priority", "effective_at", "expires_at", "closed_at", "closed_reason", "clawed")
    ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_REASON_FIELD_NUMBER: _ClassVar[int]
    CLAWED_FIELD_NUMBER: _ClassVar[int]
    id: str
    category: str
    amount: int
    remaining: int
    priority: int
    effective_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    closed_reason: str
    clawed: int
    def __init__(self, id: _Optional[str] = ..., category: _Optional[str] = ..., amount: _Optional[int] = ..., remaining: _Optional[int] = ..., priority: _Optional[int] = ..., effective_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_reason: _Optional[str] = ..., clawed: _Optional[int] = ...) -> None: ...

class GrantChange(_message.Message):
    __slots__ = ("grant_id", "category", "amount")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    category: str
    amount: int
    def __init__(self, grant_id: _Optional[str] = ..., category: _Optional[str] = ..., amount: _Optional[int] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("id", "type", "amount", "allowance_delta", "purchased_delta", "reference", "description", "created_at", "balance_after", "usage", "grants", "owed_delta")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    ALLOWANCE_DELTA_FIELD_NUMBER: _ClassVar[int]
    PURCHASED_DELTA_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    OWED_DELTA_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    amount: int
    allowance_delta: int
    purchased_delta: int
    reference: str
    description: str
    created_at: _timestamp_pb2.Timestamp
    balance_after: int
    usage: int
    grants: _containers.RepeatedCompositeFieldContainer[GrantChange]
    owed_delta: int
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., amount: _Optional[int] = ..., allowance_delta: _Optional[int] = ..., purchased_delta: _Optional[int] = ..., reference: _Optional[str] = ..., description: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., balance_after: _Optional[int] = ..., usage: _Optional[int] = ..., grants: _Optional[_Iterable[_Union[GrantChange, _Mapping]]] = ..., owed_delta: _Optional[int] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("entry", "actor", "reason")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    entry: LedgerEntry
    actor: str
    reason: str
    def __init__(self, entry: _Optional[_Union[LedgerEntry, _Mapping]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetCreditsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCreditsResponse(_message.Message):
    __slots__ = ("success", "credits")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    credits: Credits
    def __init__(self, success: _Optional[bool] = ..., credits: _Optional[_Union[Credits, _Mapping]] = ...) -> None: ...

class ListTransactionsRequest(_message.Message):
    __slots__ = ("limit", "cursor")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    limit: int
    cursor: str
    def __init__(self, limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class ListTransactionsResponse(_message.Message):
    __slots__ = ("success", "count", "transactions", "next_cursor")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    success: bool
    count: int
    transactions: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    next_cursor: str
    def __init__(self, success: _Optional[bool] = ..., count: _Optional[int] = ..., transactions: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ..., next_cursor: _Optional[str] = ...) -> None: ...

class GetNextResetDateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetNextResetDateResponse(_message.Message):
    __slots__ = ("success", "next_billing_date", "days_until_reset")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    NEXT_BILLING_DATE_FIELD_NUMBER: _ClassVar[int]
    DAYS_UNTIL_RESET_FIELD_NUMBER: _ClassVar[int]
    success: bool
    next_billing_date: _timestamp_pb2.Timestamp
    days_until_reset: int
    def __init__(self, success: _Optional[bool] = ..., next_billing_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., days_until_reset: _Optional[int] = ...) -> None: ...

class ChargeRequest(_message.Message):
    __slots__ = ("user_id", "amount", "idempotency_key", "reference", "description", "feature", "hold")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    amount: int
    idempotency_key: str
    reference: str
    description: str
    feature: str
    hold: bool
    def __init__(self, user_id: _Optional[str] = ..., amount: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., reference: _Optional[str] = ..., description: _Optional[str] = ..., feature: _Optional[str] = ..., hold: _Optional[bool] = ...) -> None: ...

class ChargeResponse(_message.Message):
    __slots__ = ("entry", "remaining_credits", "applied")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REMAINING_CREDITS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    entry: LedgerEntry
    remaining_credits: int
    applied: bool
    def __init__(self, entry: _Optional[_Union[LedgerEntry, _Mapping]] = ..., remaining_credits: _Optional[int] = ..., applied: _Optional[bool] = ...) -> None: ...

class RefundRequest(_message.Message):
    __slots__ = ("user_id", "charge_idempotency_key", "amount", "idempotency_key", "description")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHARGE_IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    charge_idempotency_key: str
    amount: int
    idempotency_key: str
    description: str
    def __init__(self, user_id: _Optional[str] = ..., charge_idempotency_key: _Optional[str] = ..., amount: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class RefundResponse(_message.Message):
    __slots__ = ("entry", "remaining_credits", "applied")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REMAINING_CREDITS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    entry: LedgerEntry
    remaining_credits: int
    applied: bool
    def __init__(self, entry: _Optional[_Union[LedgerEntry, _Mapping]] = ..., remaining_credits: _Optional[int] = ..., applied: _Optional[bool] = ...) -> None: ...

class GrantRequest(_message.Message):
    __slots__ = ("user_id", "amount", "bucket", "idempotency_key", "reference", "description", "category", "expires_at", "priority")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    amount: int
    bucket: Bucket
    idempotency_key: str
    reference: str
    description: str
    category: str
    expires_at: _timestamp_pb2.Timestamp
    priority: int
    def __init__(self, user_id: _Optional[str] = ..., amount: _Optional[int] = ..., bucket: _Optional[_Union[Bucket, str]] = ..., idempotency_key: _Optional[str] = ..., reference: _Optional[str] = ..., description: _Optional[str] = ..., category: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., priority: _Optional[int] = ...) -> None: ...

class GrantResponse(_message.Message):
    __slots__ = ("entry", "remaining_credits", "applied")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REMAINING_CREDITS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    entry: LedgerEntry
    remaining_credits: int
    applied: bool
    def __init__(self, entry: _Optional[_Union[LedgerEntry, _Mapping]] = ..., remaining_credits: _Optional[int] = ..., applied: _Optional[bool] = ...) -> None: ...

class PlanTerms(_message.Message):
    __slots__ = ("plan_name", "monthly_allowance", "is_unlimited", "features")
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_ALLOWANCE_FIELD_NUMBER: _ClassVar[int]
    IS_UNLIMITED_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    plan_name: str
    monthly_allowance: int
    is_unlimited: bool
    features: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, plan_name: _Optional[str] = ..., monthly_allowance: _Optional[int] = ..., is_unlimited: _Optional[bool] = ..., features: _Optional[_Iterable[str]] = ...) -> None: ...

class SetPlanRequest(_message.Message):
    __slots__ = ("user_id", "terms", "idempotency_key", "start_new_period", "period_end")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    START_NEW_PERIOD_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    terms: PlanTerms
    idempotency_key: str
    start_new_period: bool
    period_end: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., terms: _Optional[_Union[PlanTerms, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., start_new_period: _Optional[bool] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetPlanResponse(_message.Message):
    __slots__ = ("credits", "applied")
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    credits: Credits
    applied: bool
    def __init__(self, credits: _Optional[_Union[Credits, _Mapping]] = ..., applied: _Optional[bool] = ...) -> None: ...

class ResetDueRequest(_message.Message):
    __slots__ = ("batch_size", "as_of")
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    batch_size: int
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, batch_size: _Optional[int] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ResetDueResponse(_message.Message):
    __slots__ = ("accounts_reset", "more")
    ACCOUNTS_RESET_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    accounts_reset: int
    more: bool
    def __init__(self, accounts_reset: _Optional[int] = ..., more: _Optional[bool] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetAccountResponse(_message.Message):
    __slots__ = ("credits",)
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    credits: Credits
    def __init__(self, credits: _Optional[_Union[Credits, _Mapping]] = ...) -> None: ...

class VerifyLedgerRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LedgerDifference(_message.Message):
    __slots__ = ("user_id", "problem", "balance", "ledger_sum")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    LEDGER_SUM_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    problem: str
    balance: int
    ledger_sum: int
    def __init__(self, user_id: _Optional[str] = ..., problem: _Optional[str] = ..., balance: _Optional[int] = ..., ledger_sum: _Optional[int] = ...) -> None: ...

class VerifyLedgerResponse(_message.Message):
    __slots__ = ("accounts_checked", "differences", "open_reservations", "reserved_credits")
    ACCOUNTS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    OPEN_RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_CREDITS_FIELD_NUMBER: _ClassVar[int]
    accounts_checked: int
    differences: _containers.RepeatedCompositeFieldContainer[LedgerDifference]
    open_reservations: int
    reserved_credits: int
    def __init__(self, accounts_checked: _Optional[int] = ..., differences: _Optional[_Iterable[_Union[LedgerDifference, _Mapping]]] = ..., open_reservations: _Optional[int] = ..., reserved_credits: _Optional[int] = ...) -> None: ...

class SettleRequest(_message.Message):
    __slots__ = ("user_id", "reservation_key", "cost", "idempotency_key", "description")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_KEY_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    reservation_key: str
    cost: int
    idempotency_key: str
    description: str
    def __init__(self, user_id: _Optional[str] = ..., reservation_key: _Optional[str] = ..., cost: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class SettleResponse(_message.Message):
    __slots__ = ("charged", "returned", "uncharged", "remaining_credits", "applied")
    CHARGED_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    UNCHARGED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_CREDITS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    charged: int
    returned: int
    uncharged: int
    remaining_credits: int
    applied: bool
    def __init__(self, charged: _Optional[int] = ..., returned: _Optional[int] = ..., uncharged: _Optional[int] = ..., remaining_credits: _Optional[int] = ..., applied: _Optional[bool] = ...) -> None: ...

class ExpireDueRequest(_message.Message):
    __slots__ = ("batch_size", "as_of")
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    batch_size: int
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, batch_size: _Optional[int] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExpireDueResponse(_message.Message):
    __slots__ = ("grants_expired", "accounts", "more")
    GRANTS_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    grants_expired: int
    accounts: int
    more: bool
    def __init__(self, grants_expired: _Optional[int] = ..., accounts: _Optional[int] = ..., more: _Optional[bool] = ...) -> None: ...

class ClawbackRequest(_message.Message):
    __slots__ = ("user_id", "grant_key", "clawed_credits", "reference", "description")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GRANT_KEY_FIELD_NUMBER: _ClassVar[int]
    CLAWED_CREDITS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    grant_key: str
    clawed_credits: int
    reference: str
    description: str
    def __init__(self, user_id: _Optional[str] = ..., grant_key: _Optional[str] = ..., clawed_credits: _Optional[int] = ..., reference: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ClawbackResponse(_message.Message):
    __slots__ = ("entry", "applied", "clawed_credits", "owed_credits", "remaining_credits")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    CLAWED_CREDITS_FIELD_NUMBER: _ClassVar[int]
    OWED_CREDITS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_CREDITS_FIELD_NUMBER: _ClassVar[int]
    entry: LedgerEntry
    applied: bool
    clawed_credits: int
    owed_credits: int
    remaining_credits: int
    def __init__(self, entry: _Optional[_Union[LedgerEntry, _Mapping]] = ..., applied: _Optional[bool] = ..., clawed_credits: _Optional[int] = ..., owed_credits: _Optional[int] = ..., remaining_credits: _Optional[int] = ...) -> None: ...

class QuoteRequest(_message.Message):
    __slots__ = ("user_id", "amount", "feature")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    amount: int
    feature: str
    def __init__(self, user_id: _Optional[str] = ..., amount: _Optional[int] = ..., feature: _Optional[str] = ...) -> None: ...

class QuoteResponse(_message.Message):
    __slots__ = ("allowed", "reason", "message", "available_credits", "plan_name", "is_unlimited")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_CREDITS_FIELD_NUMBER: _ClassVar[int]
    PLAN_NAME_FIELD_NUMBER: _ClassVar[int]
    IS_UNLIMITED_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reason: str
    message: str
    available_credits: int
    plan_name: str
    is_unlimited: bool
    def __init__(self, allowed: _Optional[bool] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., available_credits: _Optional[int] = ..., plan_name: _Optional[str] = ..., is_unlimited: _Optional[bool] = ...) -> None: ...

class GrantCreditsRequest(_message.Message):
    __slots__ = ("user_id", "amount", "category", "reason", "expires_at", "expires_in", "priority", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    amount: int
    category: str
    reason: str
    expires_at: _timestamp_pb2.Timestamp
    expires_in: str
    priority: int
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., amount: _Optional[int] = ..., category: _Optional[str] = ..., reason: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_in: _Optional[str] = ..., priority: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class GrantCreditsResponse(_message.Message):
    __slots__ = ("success", "entry", "grant", "remaining_credits", "applied")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    REMAINING_CREDITS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    success: bool
    entry: LedgerEntry
    grant: CreditGrant
    remaining_credits: int
    applied: bool
    def __init__(self, success: _Optional[bool] = ..., entry: _Optional[_Union[LedgerEntry, _Mapping]] = ..., grant: _Optional[_Union[CreditGrant, _Mapping]] = ..., remaining_credits: _Optional[int] = ..., applied: _Optional[bool] = ...) -> None: ...

class VoidGrantRequest(_message.Message):
    __slots__ = ("grant_id", "reason", "idempotency_key")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    reason: str
    idempotency_key: str
    def __init__(self, grant_id: _Optional[str] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class VoidGrantResponse(_message.Message):
    __slots__ = ("success", "entry", "remaining_credits", "applied")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REMAINING_CREDITS_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    success: bool
    entry: LedgerEntry
    remaining_credits: int
    applied: bool
    def __init__(self, success: _Optional[bool] = ..., entry: _Optional[_Union[LedgerEntry, _Mapping]] = ..., remaining_credits: _Optional[int] = ..., applied: _Optional[bool] = ...) -> None: ...

class ShowAccountRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ShowAccountResponse(_message.Message):
    __slots__ = ("success", "credits", "grants", "entries")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    success: bool
    credits: Credits
    grants: _containers.RepeatedCompositeFieldContainer[CreditGrant]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    def __init__(self, success: _Optional[bool] = ..., credits: _Optional[_Union[Credits, _Mapping]] = ..., grants: _Optional[_Iterable[_Union[CreditGrant, _Mapping]]] = ..., entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ...) -> None: ...

class AdminGrantCreditsRequest(_message.Message):
    __slots__ = ("request", "actor")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    request: GrantCreditsRequest
    actor: str
    def __init__(self, request: _Optional[_Union[GrantCreditsRequest, _Mapping]] = ..., actor: _Optional[str] = ...) -> None: ...

class AdminGrantCreditsResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: GrantCreditsResponse
    def __init__(self, response: _Optional[_Union[GrantCreditsResponse, _Mapping]] = ...) -> None: ...

class AdminVoidGrantRequest(_message.Message):
    __slots__ = ("request", "actor")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    request: VoidGrantRequest
    actor: str
    def __init__(self, request: _Optional[_Union[VoidGrantRequest, _Mapping]] = ..., actor: _Optional[str] = ...) -> None: ...

class AdminVoidGrantResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: VoidGrantResponse
    def __init__(self, response: _Optional[_Union[VoidGrantResponse, _Mapping]] = ...) -> None: ...

class AdminShowAccountRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: ShowAccountRequest
    def __init__(self, request: _Optional[_Union[ShowAccountRequest, _Mapping]] = ...) -> None: ...

class AdminShowAccountResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: ShowAccountResponse
    def __init__(self, response: _Optional[_Union[ShowAccountResponse, _Mapping]] = ...) -> None: ...
