"""The credit service's internal API in memory: two buckets per account (allowance spent first,
purchased), entries keyed per account so every mutating call is idempotent, and the same refusals
and messages as the real service (NOT_FOUND, FEATURE_NOT_IN_PLAN, INSUFFICIENT_CREDITS,
INVALID_STATE for a charge refunded already). Deliberately simpler than the real ledger (no grants,
no expiry dates): it is what callers rely on, not how the ledger keeps it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.kit.errors import (
    FeatureNotInPlan,
    InsufficientCredits,
    InvalidInput,
    InvalidState,
    NotFound,
)
from services.kit.features import FEATURES
from services.kit.proto_time import from_timestamp
from studiox.credit.v1 import credit_pb2
from tests.support.fakes.channels import FakeService
from tests.support.fakes.journal import Journal

ALL_FEATURES = FEATURES
KEY_REUSED = "idempotencyKey was already used for a different request"


@dataclass
class FakeAccount:
    user_id: str
    plan_name: str = "free"
    monthly_allowance: int = 10
    is_unlimited: bool = False
    features: tuple[str, ...] = ALL_FEATURES
    allowance: int = 0
    purchased: int = 0
    owed: int = 0
    reset_at: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(days=30))

    @property
    def balance(self) -> int:
        return self.allowance + self.purchased


@dataclass
class FakeEntry:
    kind: str  # grant, charge, refund, plan, clawback
    amount: int
    allowance_delta: int = 0
    purchased_delta: int = 0
    reference: str = ""
    refunded: bool = False  # charges
    clawed: int = 0  # purchase grants
    hold: bool = False  # charges made as reservations
    settled_cost: int | None = None  # holds, once settled


class FakeCredit(FakeService):
    name = "credit"

    def __init__(self, journal: Journal | None = None) -> None:
        super().__init__(journal)
        self.accounts: dict[str, FakeAccount] = {}
        self.entries: dict[tuple[str, str], FakeEntry] = {}
        # Grants past their expiry, as user ids (one per grant), for ExpireDue.
        self.expired_grants: list[str] = []

    # --- test helpers ---

    def open_account(self, user_id: str, *, allowance: int = 10, **terms: Any) -> FakeAccount:
        account = FakeAccount(user_id, allowance=allowance, **terms)
        self.accounts[user_id] = account
        return account

    def balance(self, user_id: str) -> int:
        return self.accounts[user_id].balance

    def entry(self, user_id: str, key: str) -> FakeEntry | None:
        return self.entries.get((user_id, key))

    def keys(self, user_id: str, kind: str | None = None) -> list[str]:
        return [
            key
            for (user, key), entry in self.entries.items()
            if user == user_id and (kind is None or entry.kind == kind)
        ]

    def ledger_sum(self, user_id: str) -> int:
        """What the entries add up to; equals the balance while the ledger is consistent."""
        return sum(
            e.allowance_delta + e.purchased_delta
            for (user, _), e in self.entries.items()
            if user == user_id
        )

    # --- the RPCs ---

    def _account(self, user_id: str) -> FakeAccount:
        account = self.accounts.get(user_id)
        if account is None:
            raise NotFound("Credit account not found; initialize the user first")
        return account

    async def GetAccount(self, request: credit_pb2.GetAccountRequest) -> Any:
        account = self.accounts.get(request.user_id)
        if account is None:
            raise NotFound("Credit account not found")
        return credit_pb2.GetAccountResponse(credits=_credits(account))

    async def Charge(self, request: credit_pb2.ChargeRequest) -> Any:
        account = self._account(request.user_id)
        earlier = self.entry(request.user_id, request.idempotency_key)
        if earlier is not None:
            if earlier.kind != "charge" or earlier.amount != request.amount:
                raise InvalidInput(KEY_REUSED)
            return credit_pb2.ChargeResponse(remaining_credits=account.balance, applied=False)
        if request.feature and request.feature not in account.features:
            raise FeatureNotInPlan(
                f"{request.feature} is not included in the {account.plan_name} plan"
            )
        entry = FakeEntry("charge", request.amount, reference=request.reference, hold=request.hold)
        if not account.is_unlimited:
            if account.balance < request.amount:
                raise InsufficientCredits(required=request.amount, available=account.balance)
            from_allowance = min(account.allowance, request.amount)
            entry.allowance_delta = -from_allowance
            entry.purchased_delta = -(request.amount - from_allowance)
            account.allowance += entry.allowance_delta
            account.purchased += entry.purchased_delta
        self.entries[(request.user_id, request.idempotency_key)] = entry
        return credit_pb2.ChargeResponse(remaining_credits=account.balance, applied=True)

    async def Refund(self, request: credit_pb2.RefundRequest) -> Any:
        account = self._account(request.user_id)
        if self.entry(request.user_id, request.idempotency_key) is not None:
            return credit_pb2.RefundResponse(remaining_credits=account.balance, applied=False)
        charge = self.entry(request.user_id, request.charge_idempotency_key)
        if charge is None or charge.kind != "charge":
            raise NotFound("Charge not found")
        if charge.refunded:
            raise InvalidState("Charge already refunded")
        charge.refunded = True
        refund = FakeEntry(
            "refund",
            charge.amount,
            allowance_delta=-charge.allowance_delta,
            purchased_delta=-charge.purchased_delta,
            reference=charge.reference,
        )
        account.allowance += refund.allowance_delta
        account.purchased += refund.purchased_delta
        self.entries[(request.user_id, request.idempotency_key)] = refund
        return credit_pb2.RefundResponse(remaining_credits=account.balance, applied=True)

    async def Settle(self, request: credit_pb2.SettleRequest) -> Any:
        """The hold keeps min(cost, held); the rest goes back, last-spent (purchased) first."""
        account = self._account(request.user_id)
        hold = self.entry(request.user_id, request.reservation_key)
        if hold is None or not hold.hold:
            raise NotFound("Reservation not found")
        if hold.refunded:
            raise InvalidState("Reservation was released")
        charged = min(hold.amount, request.cost)
        reply = credit_pb2.SettleResponse(
            charged=charged,
            returned=hold.amount - charged,
            uncharged=request.cost - charged,
            remaining_credits=account.balance,
        )
        if hold.settled_cost is not None:
            if hold.settled_cost != request.cost:
                raise InvalidInput(KEY_REUSED)
            return reply
        hold.settled_cost = request.cost
        back = hold.amount - charged if not account.is_unlimited else 0
        to_purchased = min(back, -hold.purchased_delta)
        entry = FakeEntry(
            "settle",
            back,
            allowance_delta=back - to_purchased,
            purchased_delta=to_purchased,
            reference=hold.reference,
        )
        account.allowance += entry.allowance_delta
        account.purchased += entry.purchased_delta
        self.entries[(request.user_id, request.idempotency_key)] = entry
        reply.remaining_credits, reply.applied = account.balance, True
        return reply

    async def Grant(self, request: credit_pb2.GrantRequest) -> Any:
        account = self._account(request.user_id)
        earlier = self.entry(request.user_id, request.idempotency_key)
        if earlier is not None:
            if earlier.kind != "grant" or earlier.amount != request.amount:
                raise InvalidInput(KEY_REUSED)
            return credit_pb2.GrantResponse(remaining_credits=account.balance, applied=False)
        settled = min(account.owed, request.amount)
        account.owed -= settled
        entry = FakeEntry("grant", request.amount, reference=request.reference)
        if request.bucket == credit_pb2.BUCKET_ALLOWANCE or request.category == "allowance":
            entry.allowance_delta = request.amount - settled
        else:
            entry.purchased_delta = request.amount - settled
        account.allowance += entry.allowance_delta
        account.purchased += entry.purchased_delta
        self.entries[(request.user_id, request.idempotency_key)] = entry
        return credit_pb2.GrantResponse(remaining_credits=account.balance, applied=True)

    async def SetPlan(self, request: credit_pb2.SetPlanRequest) -> Any:
        terms = request.terms
        account = self.accounts.get(request.user_id)
        created = account is None
        if account is None:
            account = self.accounts[request.user_id] = FakeAccount(request.user_id, allowance=0)
        marker = f"{request.idempotency_key}:grant"
        if not created and self.entry(request.user_id, marker) is not None:
            return credit_pb2.SetPlanResponse(credits=_credits(account), applied=False)
        account.plan_name = terms.plan_name
        account.monthly_allowance = terms.monthly_allowance
        account.is_unlimited = terms.is_unlimited
        account.features = tuple(terms.features)
        entry = FakeEntry("plan", 0)
        if request.start_new_period or created:
            fresh = 0 if terms.is_unlimited else terms.monthly_allowance
            entry.allowance_delta = fresh - account.allowance
            account.allowance = fresh
            account.reset_at = (
                from_timestamp(request.period_end)
                if request.HasField("period_end")
                else datetime.now(UTC) + timedelta(days=30)
            )
        self.entries[(request.user_id, marker)] = entry
        return credit_pb2.SetPlanResponse(credits=_credits(account), applied=True)

    async def Clawback(self, request: credit_pb2.ClawbackRequest) -> Any:
        account = self._account(request.user_id)
        grant = self.entry(request.user_id, request.grant_key)
        if grant is None or grant.kind != "grant":
            raise NotFound("Grant not found")
        wanted = min(max(request.clawed_credits, 0), grant.amount)
        change = wanted - grant.clawed
        if change == 0:
            return credit_pb2.ClawbackResponse(
                applied=False,
                clawed_credits=grant.clawed,
                owed_credits=account.owed,
                remaining_credits=account.balance,
            )
        if change > 0:  # take back what the balance holds, owe the rest
            taken = min(change, account.purchased)
            account.purchased -= taken
            account.owed += change - taken
            delta = -taken
        else:  # given back: what is owed is settled first
            settled = min(account.owed, -change)
            account.owed -= settled
            delta = -change - settled
            account.purchased += delta
        count = len(self.keys(request.user_id, "clawback"))
        self.entries[(request.user_id, f"clawback:{request.grant_key}:{count + 1}")] = FakeEntry(
            "clawback", change, purchased_delta=delta, reference=request.reference
        )
        grant.clawed = wanted
        return credit_pb2.ClawbackResponse(
            applied=True,
            clawed_credits=wanted,
            owed_credits=account.owed,
            remaining_credits=account.balance,
        )

    async def Quote(self, request: credit_pb2.QuoteRequest) -> Any:
        account = self._account(request.user_id)
        reply = credit_pb2.QuoteResponse(
            allowed=True,
            available_credits=account.balance,
            plan_name=account.plan_name,
            is_unlimited=account.is_unlimited,
        )
        if request.feature and request.feature not in account.features:
            reply.allowed, reply.reason = False, "feature_not_in_plan"
        elif not account.is_unlimited and account.balance < request.amount:
            reply.allowed, reply.reason = False, "insufficient_credits"
        return reply

    async def ResetDue(self, request: credit_pb2.ResetDueRequest) -> Any:
        as_of = from_timestamp(request.as_of)
        due = [a for a in self.accounts.values() if a.reset_at <= as_of]
        batch = due[: request.batch_size]
        for account in batch:
            fresh = 0 if account.is_unlimited else account.monthly_allowance
            self.entries[(account.user_id, f"reset:{account.reset_at.isoformat()}")] = FakeEntry(
                "grant", fresh, allowance_delta=fresh - account.allowance
            )
            account.allowance = fresh
            while account.reset_at <= as_of:
                account.reset_at += timedelta(days=30)
        return credit_pb2.ResetDueResponse(accounts_reset=len(batch), more=len(due) > len(batch))

    async def ExpireDue(self, request: credit_pb2.ExpireDueRequest) -> Any:
        batch = self.expired_grants[: request.batch_size]
        del self.expired_grants[: len(batch)]
        return credit_pb2.ExpireDueResponse(
            grants_expired=len(batch), accounts=len(set(batch)), more=bool(self.expired_grants)
        )


def _credits(account: FakeAccount) -> credit_pb2.Credits:
    credits = credit_pb2.Credits(
        user_id=account.user_id,
        current_credits=account.balance,
        allowance_credits=account.allowance,
        purchased_credits=account.purchased,
        monthly_allowance=account.monthly_allowance,
        plan_name=account.plan_name,
        is_unlimited=account.is_unlimited,
        owed_credits=account.owed,
    )
    credits.credit_reset_at.FromDatetime(account.reset_at)
    return credits
