"""Task creation, the state machine and reads, through the real task and credit services."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import psycopg
import pytest

from services.kit.batching import Batcher
from services.kit.db import VALUE_REFUSALS, Database
from services.kit.errors import reason_of
from services.task import store
from services.task.domain import ChargeState, Reservation, Task
from studiox.credit.v1 import credit_pb2
from studiox.task.v1 import task_pb2
from tests.support.cluster import Cluster, internal_metadata
from tests.support.credit import FREE, PRO, CreditClient
from tests.support.tasks import TaskClient, struct


async def user_with(
    credit: CreditClient, cluster: Cluster, credits: int, plan: credit_pb2.PlanTerms = FREE
) -> TaskClient:
    """A user holding exactly `credits` (allowance first, the rest purchased)."""
    user = await credit.open_account(plan, purchased=max(0, credits - plan.monthly_allowance))
    if credits < plan.monthly_allowance:
        await credit.charge(user, plan.monthly_allowance - credits, key="setup")
    return TaskClient(cluster.channel("task"), user)


async def test_100_concurrent_video_creates_on_37_credits(
    cluster: Cluster, credit: CreditClient
) -> None:
    tasks = await user_with(credit, cluster, 37)

    async def one() -> str:
        try:
            await tasks.create("video_generation", prompt="a cat")
        except grpc.aio.AioRpcError as err:
            return reason_of(err) or err.code().name
        return "created"

    results = await asyncio.gather(*(one() for _ in range(100)))
    assert results.count("created") == 7, results
    assert results.count("INSUFFICIENT_CREDITS") == 93, results
    assert (await credit.account(tasks.user)).current_credits == 2
    assert cluster.sql("SELECT count(*) FROM tasks.tasks WHERE user_id = %s", tasks.user) == [(7,)]
    assert list((await credit.verify()).differences) == []


async def test_create_answers_201_with_the_charge(cluster: Cluster, credit: CreditClient) -> None:
    tasks = await user_with(credit, cluster, 10)
    call = tasks.stub.CreateTask(
        task_pb2.CreateTaskRequest(
            type="video_generation", input_data=struct({"prompt": "x", "n": 2})
        ),
        metadata=tasks.md,
    )
    reply = await call
    assert ("x-http-status", "201") in tuple(await call.initial_metadata())
    assert (reply.success, reply.credit_deducted, reply.remaining_credits) == (True, 5, 5)
    assert reply.task.status == "pending"
    assert reply.task.credits_cost == 5
    assert dict(reply.task.input_data) == {"prompt": "x", "n": 2}


@pytest.mark.parametrize(
    ("task_type", "input_data", "code", "why"),
    [
        ("image_upscaling", {}, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
        ("", {}, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
        ("advanced_editing", {}, grpc.StatusCode.PERMISSION_DENIED, "FEATURE_NOT_IN_PLAN"),
        (
            "image_analysis",
            {"blob": "x" * 70_000},
            grpc.StatusCode.INVALID_ARGUMENT,
            "PAYLOAD_TOO_LARGE",
        ),
    ],
)
async def test_refused_creates_change_nothing(
    cluster: Cluster,
    credit: CreditClient,
    task_type: str,
    input_data: dict[str, Any],
    code: grpc.StatusCode,
    why: str,
) -> None:
    tasks = await user_with(credit, cluster, 10)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await tasks.create(task_type, **input_data)
    assert err.value.code() == code
    assert reason_of(err.value) == why
    if task_type == "image_upscaling":
        assert (
            "Valid types: image_analysis, video_generation, advanced_editing" in err.value.details()
        )
    assert cluster.sql("SELECT count(*) FROM tasks.tasks WHERE user_id = %s", tasks.user) == [(0,)]
    assert (await credit.account(tasks.user)).current_credits == 10


async def test_insufficient_credits_leave_no_task(cluster: Cluster, credit: CreditClient) -> None:
    tasks = await user_with(credit, cluster, 4)
    await tasks.create("image_analysis")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await tasks.create("video_generation")
    assert reason_of(err.value) == "INSUFFICIENT_CREDITS"
    assert err.value.details() == "Insufficient credits. Required: 5, Available: 3"
    assert cluster.sql("SELECT count(*) FROM tasks.tasks WHERE user_id = %s", tasks.user) == [(1,)]


async def test_idempotency_key_makes_retries_return_the_same_task(
    cluster: Cluster, credit: CreditClient
) -> None:
    tasks = await user_with(credit, cluster, 10)
    replies = await asyncio.gather(
        *(tasks.create("video_generation", key="retry-1", p=1) for _ in range(10))
    )
    assert len({r.task.id for r in replies}) == 1
    assert (await credit.account(tasks.user)).current_credits == 5
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await tasks.create("video_generation", key="retry-1", p=2)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    other = await tasks.create("image_analysis", key="retry-2")
    assert other.task.id != replies[0].task.id


async def test_cancel_refunds_exactly_once(cluster: Cluster, credit: CreditClient) -> None:
    tasks = await user_with(credit, cluster, 10)
    created = await tasks.create("video_generation")
    first = await tasks.cancel(created.task.id)
    assert (first.task.status, first.refund_applied) == ("cancelled", True)
    assert (await credit.account(tasks.user)).current_credits == 10
    second = await tasks.cancel(created.task.id)
    assert (second.task.status, second.refund_applied) == ("cancelled", False)
    assert (await credit.account(tasks.user)).current_credits == 10
    racing = await tasks.create("video_generation")
    replies = await asyncio.gather(
        *(tasks.cancel(racing.task.id) for _ in range(10)), return_exceptions=True
    )
    assert sum(1 for r in replies if not isinstance(r, BaseException) and r.refund_applied) == 1
    assert (await credit.account(tasks.user)).current_credits == 10
    assert list((await credit.verify()).differences) == []


async def test_other_users_tasks_and_bad_ids_are_not_found(
    cluster: Cluster, credit: CreditClient
) -> None:
    owner = await user_with(credit, cluster, 10)
    stranger = await user_with(credit, cluster, 10)
    created = await owner.create("image_analysis")
    for call in (
        stranger.get(created.task.id),
        stranger.cancel(created.task.id),
        owner.get("nope"),
        owner.cancel("1 OR 1=1"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await owner.get(created.task.id)).status == "pending"


async def test_status_endpoint_is_for_workers(cluster: Cluster, credit: CreditClient) -> None:
    tasks = await user_with(credit, cluster, 10)
    created = await tasks.create("video_generation")
    request = task_pb2.UpdateStatusRequest(id=created.task.id, status="processing")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await tasks.stub.UpdateStatus(request, metadata=tasks.md)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    worker = internal_metadata()
    moved = await tasks.stub.UpdateStatus(request, metadata=worker)
    assert moved.task.status == "processing"
    done = await tasks.stub.UpdateStatus(
        task_pb2.UpdateStatusRequest(
            id=created.task.id, status="done", output_data=struct({"url": "https://cdn/x.mp4"})
        ),
        metadata=worker,
    )
    assert done.task.status == "done"
    assert dict(done.task.output_data) == {"url": "https://cdn/x.mp4"}
    assert done.task.HasField("completed_at")
    for illegal in ("pending", "processing", "failed", "bogus"):
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await tasks.stub.UpdateStatus(
                task_pb2.UpdateStatusRequest(id=created.task.id, status=illegal), metadata=worker
            )
        assert bad.value.code() in (
            grpc.StatusCode.FAILED_PRECONDITION,
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert reason_of(bad.value) in ("INVALID_STATE", "INVALID_INPUT")
    with pytest.raises(grpc.aio.AioRpcError) as done_cancel:
        await tasks.cancel(created.task.id)
    assert reason_of(done_cancel.value) == "INVALID_STATE"
    assert (await credit.account(tasks.user)).current_credits == 5


async def test_failure_refunds_automatically(cluster: Cluster, credit: CreditClient) -> None:
    tasks = await user_with(credit, cluster, 10)
    created = await tasks.create("video_generation")
    worker = internal_metadata()
    await tasks.stub.UpdateStatus(
        task_pb2.UpdateStatusRequest(id=created.task.id, status="processing"), metadata=worker
    )
    failed = await tasks.stub.UpdateStatus(
        task_pb2.UpdateStatusRequest(id=created.task.id, status="failed", error="model crashed"),
        metadata=worker,
    )
    assert (failed.task.status, failed.task.error) == ("failed", "model crashed")
    assert (await credit.account(tasks.user)).current_credits == 10
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await tasks.cancel(created.task.id)
    assert reason_of(err.value) == "INVALID_STATE"


async def test_list_stats_and_pagination(cluster: Cluster, credit: CreditClient) -> None:
    tasks = await user_with(credit, cluster, 100, plan=PRO)
    ids = [
        (await tasks.create(t)).task.id for t in ["image_analysis"] * 5 + ["advanced_editing"] * 2
    ]
    await tasks.cancel(ids[0])
    page1 = await tasks.stub.ListTasks(task_pb2.ListTasksRequest(limit=4), metadata=tasks.md)
    page2 = await tasks.stub.ListTasks(
        task_pb2.ListTasksRequest(limit=4, cursor=page1.next_cursor), metadata=tasks.md
    )
    assert [t.id for t in [*page1.tasks, *page2.tasks]] == ids[::-1]
    assert (page1.count, page2.count, page2.next_cursor) == (4, 3, "")
    pending = await tasks.stub.ListTasks(
        task_pb2.ListTasksRequest(status="cancelled"), metadata=tasks.md
    )
    assert [t.id for t in pending.tasks] == [ids[0]]

    stats = (await tasks.stub.GetTaskStats(task_pb2.GetTaskStatsRequest(), metadata=tasks.md)).stats
    assert (stats.total, stats.pending, stats.cancelled, stats.done) == (7, 6, 1, 0)
    assert dict(stats.by_type) == {"image_analysis": 5, "advanced_editing": 2}

    for bad in (
        task_pb2.ListTasksRequest(status="weird"),
        task_pb2.ListTasksRequest(limit=1000),
        task_pb2.ListTasksRequest(cursor="x"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await tasks.stub.ListTasks(bad, metadata=tasks.md)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_one_statement_marks_many_reservations_charged(cluster: Cluster) -> None:
    """store.mark_charged, as concurrent creates share it: every listed reservation is marked,
    a repeated id once, and a reservation repair gave up meanwhile is left as it is."""
    db = Database(cluster.settings, pool_size=1)
    ids = [uuid.uuid4() for _ in range(3)]
    try:
        async with db.lean() as conn:
            await store.insert_reserved(conn, [_reservation(task_id) for task_id in ids])
        async with db.transaction() as conn:
            assert await store.give_up_reservation(conn, ids[2])
        async with db.lean() as conn:
            marked = await store.mark_charged(conn, [ids[0], ids[1], ids[0], ids[2]])
            again = await store.mark_charged(conn, ids)
    finally:
        await db.close()

    assert sorted(t.id for t in marked) == sorted(ids[:2])
    assert all(t.charge_state is ChargeState.CHARGED for t in marked)
    assert again == []
    states = dict(cluster.sql("SELECT id, charge_state FROM tasks.tasks WHERE id = ANY(%s)", ids))
    assert states == {ids[0]: "charged", ids[1]: "charged", ids[2]: "refunding"}


def _reservation(
    task_id: uuid.UUID, *, user: str = "user_marks", key: str | None = None, cost: int = 5
) -> Reservation:
    return Reservation(
        task_id=task_id,
        user_id=user,
        task_type="image_analysis",
        canonical_input=f'{{"id": "{task_id}"}}',
        cost=cost,
        client_key=key,
        request_hash=f"hash-{task_id}",
    )


async def test_one_statement_writes_many_reservations(cluster: Cluster) -> None:
    """store.insert_reserved, as concurrent creates share it: each reservation is written with
    its own input, and one whose client key was used, earlier or in the same statement, is left
    out (its create then finds the task that holds the key)."""
    db = Database(cluster.settings, pool_size=1)
    earlier, used, first, repeat, other = (_reservation(uuid.uuid4(), key=k) for k in "aabbc")
    plain = _reservation(uuid.uuid4())
    try:
        async with db.lean() as conn:
            assert [t.id for t in await store.insert_reserved(conn, [earlier])] == [earlier.task_id]
            written = await store.insert_reserved(conn, [used, first, repeat, other, plain])
    finally:
        await db.close()

    kept = (first, other, plain)
    assert [t.id for t in written] == [r.task_id for r in kept]
    assert all(t.charge_state is ChargeState.RESERVED for t in written)
    assert [t.input_data for t in written] == [{"id": str(r.task_id)} for r in kept]
    assert written[0].seq < written[1].seq < written[2].seq


async def test_a_reservation_the_database_refuses_fails_only_its_own_create(
    cluster: Cluster,
) -> None:
    """A row PostgreSQL refuses fails its whole statement; the batch is written again row by row,
    so the other creates in it are written and only the refused one fails."""
    db = Database(cluster.settings, pool_size=1)

    async def write(reservations: list[Reservation]) -> dict[Reservation, Task]:
        async with db.lean() as conn:
            rows = {t.id: t for t in await store.insert_reserved(conn, reservations)}
        return {r: rows[r.task_id] for r in reservations if r.task_id in rows}

    batcher = Batcher(write, refused=VALUE_REFUSALS)
    good = [_reservation(uuid.uuid4(), user="user_batch") for _ in range(6)]
    refused = _reservation(uuid.uuid4(), user="user_batch", cost=0)  # CHECK (credits_cost > 0)
    try:
        results = await asyncio.gather(
            *(batcher.submit(r) for r in (*good[:3], refused, *good[3:])), return_exceptions=True
        )
    finally:
        await db.close()

    assert isinstance(results[3], psycopg.errors.CheckViolation)
    assert [t.id for t in results if isinstance(t, Task)] == [r.task_id for r in good]
    assert cluster.scalar("SELECT count(*) FROM tasks.tasks WHERE user_id = 'user_batch'") == 6
