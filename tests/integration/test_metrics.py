from __future__ import annotations

import grpc
import pytest
from prometheus_client import REGISTRY

from tests.support.cluster import Cluster
from tests.support.credit import FREE, CreditClient


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_credit_movements_and_rpcs_are_counted(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE)
    charged = sample("studiox_credits_total", kind="charge")
    refunded = sample("studiox_credits_total", kind="refund")
    refused = sample("studiox_charges_refused_total", reason="INSUFFICIENT_CREDITS")
    rpcs = sample(
        "studiox_rpc_total",
        service="credit",
        method="/studiox.credit.v1.CreditInternalService/Charge",
        code="OK",
    )

    await credit.charge(user, 4, key="m1")
    await credit.charge(user, 4, key="m1")  # a retry moves nothing
    await credit.refund(user, "m1", key="r-m1")
    with pytest.raises(grpc.aio.AioRpcError):
        await credit.charge(user, 50, key="m2")

    assert sample("studiox_credits_total", kind="charge") == charged + 4
    assert sample("studiox_credits_total", kind="refund") == refunded + 4
    assert sample("studiox_charges_refused_total", reason="INSUFFICIENT_CREDITS") == refused + 1
    assert (
        sample(
            "studiox_rpc_total",
            service="credit",
            method="/studiox.credit.v1.CreditInternalService/Charge",
            code="OK",
        )
        == rpcs + 2
    )
