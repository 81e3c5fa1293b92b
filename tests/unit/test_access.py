from __future__ import annotations

import pytest

from services.kit.access import Access, access_for, check_internal
from services.kit.errors import PermissionDenied, Unauthenticated


def test_internal_services_need_the_internal_credential() -> None:
    assert access_for("/studiox.credit.v1.CreditInternalService/Charge", {}) is Access.INTERNAL


def test_public_services_default_to_user_tokens() -> None:
    assert access_for("/studiox.credit.v1.CreditService/GetCredits", {}) is Access.USER


def test_overrides_win() -> None:
    overrides = {
        "BillingService/ListPlans": Access.PUBLIC,
        "TaskService/UpdateStatus": Access.INTERNAL,
    }
    assert access_for("/studiox.billing.v1.BillingService/ListPlans", overrides) is Access.PUBLIC
    assert access_for("/studiox.task.v1.TaskService/UpdateStatus", overrides) is Access.INTERNAL
    assert access_for("/studiox.billing.v1.BillingService/ListPayments", overrides) is Access.USER


def test_internal_credential_check() -> None:
    check_internal({"x-internal-token": "s3cret"}, "s3cret")
    with pytest.raises(Unauthenticated):
        check_internal({}, "s3cret")
    with pytest.raises(Unauthenticated):
        check_internal({"x-internal-token": "s3cre"}, "s3cret")
    with pytest.raises(PermissionDenied):
        check_internal({"x-internal-token": "nope"}, "s3cret", user_present=True)
