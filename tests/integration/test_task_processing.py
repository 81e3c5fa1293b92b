"""Claiming with leases, and the repair job settling what crashes leave behind."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from studiox.task.v1 import task_pb2
from tests.support.cluster import Cluster, internal_metadata
from tests.support.credit import FREE, CreditClient
from tests.support.tasks import TaskClient


async def new_user(credit: CreditClient, cluster: Cluster, purchased: int = 0) -> TaskClient:
    return TaskClient(cluster.channel("task"), await credit.open_account(FREE, purchased=purchased))


async def claim(
    tasks: TaskClient, limit: int, lease: int = 60, worker: str = "w"
) -> task_pb2.ClaimPendingResponse:
    return await tasks.internal.ClaimPending(
        task_pb2.ClaimPendingRequest(limit=limit, lease_seconds=lease, worker_id=worker),
        metadata=internal_metadata(),
    )


async def repair(tasks: TaskClient, min_age: int = 0) -> task_pb2.RepairOrphansResponse:
    return await tasks.internal.RepairOrphans(
        task_pb2.RepairOrphansRequest(min_age_seconds=min_age), metadata=internal_metadata()
    )


async def drain(tasks: TaskClient) -> None:
    """Claim whatever other tests left pending, so counts below are this test's own."""
    while (await claim(tasks, 100, worker="drain")).tasks:
        pass


async def test_concurrent_claimers_never_share_a_task(
    cluster: Cluster, credit: CreditClient
) -> None:
    tasks = await new_user(credit, cluster, purchased=40)
    await drain(tasks)
    created = {(await tasks.create("image_analysis")).task.id for _ in range(30)}
    replies = await asyncio.gather(*(claim(tasks, 8, worker=f"w{i}") for i in range(6)))
    claimed = [t.id for r in replies for t in r.tasks]
    assert len(claimed) == len(set(claimed)) == 30
    assert set(claimed) == created
    assert all(t.status == "processing" for r in replies for t in r.tasks)


async def test_expired_leases_requeue_then_fail_with_refund(
    cluster: Cluster, credit: CreditClient
) -> None:
    tasks = await new_user(credit, cluster)
    await drain(tasks)
    created = await tasks.create("video_generation")
    assert (await credit.account(tasks.user)).current_credits == 5
    for attempt in range(1, 4):
        got = await claim(tasks, 100)
        assert [t.id for t in got.tasks] == [created.task.id], attempt
        cluster.sql(
            "UPDATE tasks.tasks SET lease_expires_at = now() - interval '1 second' WHERE id = %s",
            created.task.id,
        )
    final = await claim(tasks, 100)
    assert final.failed >= 1
    assert created.task.id not in [t.id for t in final.tasks]
    task = await tasks.get(created.task.id)
    assert task.status == "failed"
    assert "attempts" in task.error
    assert (await credit.account(tasks.user)).current_credits == 10


async def test_heartbeat_extends_only_the_owners_lease(
    cluster: Cluster, credit: CreditClient
) -> None:
    tasks = await new_user(credit, cluster)
    await drain(tasks)
    created = await tasks.create("image_analysis")
    await claim(tasks, 100, worker="owner")
    beat = await tasks.internal.Heartbeat(
        task_pb2.HeartbeatRequest(id=created.task.id, worker_id="owner", lease_seconds=600),
        metadata=internal_metadata(),
    )
    assert beat.lease_expires_at.seconds > 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await tasks.internal.Heartbeat(
            task_pb2.HeartbeatRequest(id=created.task.id, worker_id="thief"),
            metadata=internal_metadata(),
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_tasks_are_claimed_only_once_charged(cluster: Cluster, credit: CreditClient) -> None:
    tasks = await new_user(credit, cluster)
    await drain(tasks)
    task_id = uuid.uuid4()
    cluster.sql(
        "INSERT INTO tasks.tasks (id, user_id, type, status, credits_cost, charge_state)"
        " VALUES (%s, %s, 'image_analysis', 'pending', 1, 'reserved')",
        task_id,
        tasks.user,
    )
    assert str(task_id) not in [t.id for t in (await claim(tasks, 100)).tasks]


def _reserve(
    cluster: Cluster, user: str, state: str = "reserved", status: str = "pending"
) -> uuid.UUID:
    """A task row as a crash would leave it, older than any in-flight creation."""
    task_id = uuid.uuid4()
    cluster.sql(
        "INSERT INTO tasks.tasks (id, user_id, type, status, credits_cost, charge_state, updated_at)"
        " VALUES (%s, %s, 'video_generation', %s, 5, %s, now() - interval '10 minutes')",
        task_id,
        user,
        status,
        state,
    )
    return task_id


def _charge_state(cluster: Cluster, task_id: uuid.UUID) -> tuple[object, ...]:
    return cluster.sql("SELECT status, charge_state FROM tasks.tasks WHERE id = %s", task_id)[0]


async def test_repair_settles_every_crash_point(cluster: Cluster, credit: CreditClient) -> None:
    tasks = await new_user(credit, cluster)
    user = tasks.user

    # Crash after the charge, before the task was marked charged.
    charged = _reserve(cluster, user)
    await credit.charge(user, 5, key=f"task:{charged}", feature="video_generation")
    # Crash before the charge reached the ledger.
    uncharged = _reserve(cluster, user)
    # Crash after a cancel was recorded, before its refund.
    owed = _reserve(cluster, user, state="refunding", status="cancelled")
    await credit.charge(user, 5, key=f"task:{owed}", feature="video_generation")
    assert (await credit.account(user)).current_credits == 0

    # An in-flight creation (young reservation) is left alone.
    young = uuid.uuid4()
    cluster.sql(
        "INSERT INTO tasks.tasks (id, user_id, type, status, credits_cost, charge_state)"
        " VALUES (%s, %s, 'image_analysis', 'pending', 1, 'reserved')",
        young,
        user,
    )
    # Default minimum age (60 s): the 10-minute-old reservations are settled, the young one not.
    report = await tasks.internal.RepairOrphans(
        task_pb2.RepairOrphansRequest(), metadata=internal_metadata()
    )
    assert _charge_state(cluster, young) == ("pending", "reserved")
    assert report.rejected >= 2
    assert report.refunded >= 2
    assert _charge_state(cluster, charged) == ("failed", "refunded")
    assert _charge_state(cluster, uncharged) == ("failed", "released")
    assert _charge_state(cluster, owed) == ("cancelled", "refunded")
    assert (await credit.account(user)).current_credits == 10

    # A charge that lands after the task was given up is found and paid back by the next run.
    await credit.charge(user, 5, key=f"task:{uncharged}", feature="video_generation")
    await repair(tasks)
    assert _charge_state(cluster, uncharged) == ("failed", "refunded")
    assert (await credit.account(user)).current_credits == 10

    again = await repair(tasks)  # settled work stays settled
    assert (await credit.account(user)).current_credits == 10
    assert again.refunded == 0 or all(
        _charge_state(cluster, t)[1] == "refunded" for t in (charged, owed, uncharged)
    )
    assert list((await credit.verify()).differences) == []


async def test_repair_rejects_negative_age(cluster: Cluster, credit: CreditClient) -> None:
    tasks = await new_user(credit, cluster)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await repair(tasks, min_age=-1)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_refund_owed_while_credit_is_down_is_paid_by_repair(
    cluster: Cluster, credit: CreditClient
) -> None:
    tasks = await new_user(credit, cluster)
    created = await tasks.create("video_generation")
    async with cluster.stopped("credit"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await tasks.cancel(created.task.id)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert (await tasks.get(created.task.id)).status == "cancelled"
    retry = await tasks.cancel(created.task.id)  # the retry pays the refund it owes
    assert retry.refund_applied
    assert (await credit.account(tasks.user)).current_credits == 10
