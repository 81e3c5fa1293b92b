"""Hostile input at the service boundary, through the real gRPC services and PostgreSQL: every
refusal is INVALID_ARGUMENT naming the field, never INTERNAL, and nothing reaches the database."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from services.kit.errors import reason_of
from services.kit.pagination import MAX_POSITION, encode_cursor
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc
from studiox.task.v1 import task_pb2
from studiox.user.v1 import user_pb2, user_pb2_grpc
from tests.support.cluster import Cluster, internal_metadata
from tests.support.credit import CreditClient
from tests.support.tasks import TaskClient, struct
from tests.support.tokens import DEFAULT_KEY, bearer


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


def deep_create(levels: int) -> task_pb2.CreateTaskRequest:
    request = task_pb2.CreateTaskRequest(type="image_analysis")
    request.input_data.update(nested(levels))  # built in place: copying would re-parse it
    return request


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def new_user(credit: CreditClient, cluster: Cluster) -> TaskClient:
    return TaskClient(cluster.channel("task"), await credit.open_account())


@pytest.mark.parametrize("levels", [33, 34, 50, 99])
async def test_deep_input_is_invalid_argument_not_internal(
    cluster: Cluster, credit: CreditClient, levels: int
) -> None:
    tasks = await new_user(credit, cluster)
    request = deep_create(levels)
    error = await refused(tasks.stub.CreateTask(request, metadata=tasks.md))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(error) == "INVALID_INPUT"
    assert error.details() == "inputData must not be nested deeper than 32 levels"
    assert cluster.sql("SELECT count(*) FROM tasks.tasks WHERE user_id = %s", tasks.user) == [(0,)]
    assert (await credit.account(tasks.user)).current_credits == 10


async def test_undecodable_requests_are_checked_after_the_caller(cluster: Cluster) -> None:
    """Access control still comes first: an anonymous caller learns nothing about its body."""
    tasks = TaskClient(cluster.channel("task"), "nobody")
    request = deep_create(60)
    error = await refused(tasks.stub.CreateTask(request))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("input_data", "field"),
    [({"k\x00": 1}, "inputData"), ({"k": "v\x00"}, "inputData")],
)
async def test_nul_in_input_is_refused_before_postgres(
    cluster: Cluster, credit: CreditClient, input_data: dict[str, Any], field: str
) -> None:
    tasks = await new_user(credit, cluster)
    request = task_pb2.CreateTaskRequest(type="image_analysis", input_data=struct(input_data))
    error = await refused(tasks.stub.CreateTask(request, metadata=tasks.md))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"{field} must not contain NUL characters"


async def test_nul_in_a_workers_report_is_refused_and_the_task_unchanged(
    cluster: Cluster, credit: CreditClient
) -> None:
    tasks = await new_user(credit, cluster)
    task = (await tasks.create()).task
    worker = internal_metadata()
    await tasks.stub.UpdateStatus(
        task_pb2.UpdateStatusRequest(id=task.id, status="processing"), metadata=worker
    )
    for report, field in [
        (
            task_pb2.UpdateStatusRequest(
                id=task.id, status="done", output_data=struct({"out": "a\x00b"})
            ),
            "outputData",
        ),
        (task_pb2.UpdateStatusRequest(id=task.id, status="failed", error="boom\x00"), "error"),
    ]:
        error = await refused(tasks.stub.UpdateStatus(report, metadata=worker))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == f"{field} must not contain NUL characters"
    assert (await tasks.get(task.id)).status == "processing"
    # A long error is accepted (and kept truncated), as workers send tracebacks.
    done = await tasks.stub.UpdateStatus(
        task_pb2.UpdateStatusRequest(id=task.id, status="failed", error="trace " * 5000),
        metadata=worker,
    )
    assert len(done.task.error) == 2000


async def test_cursors_beyond_bigint_are_invalid_argument(
    cluster: Cluster, credit: CreditClient
) -> None:
    tasks = await new_user(credit, cluster)
    transactions = credit_pb2_grpc.CreditServiceStub(cluster.channel("credit"))
    for cursor in (encode_cursor(MAX_POSITION + 1), encode_cursor(10**30)):
        for call in (
            tasks.stub.ListTasks(task_pb2.ListTasksRequest(cursor=cursor), metadata=tasks.md),
            transactions.ListTransactions(
                credit_pb2.ListTransactionsRequest(cursor=cursor), metadata=tasks.md
            ),
        ):
            error = await refused(call)
            assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert error.details() == "cursor is invalid"
    # The largest position is a valid (empty) page.
    page = await tasks.stub.ListTasks(
        task_pb2.ListTasksRequest(cursor=encode_cursor(MAX_POSITION)), metadata=tasks.md
    )
    assert page.count == 0


async def test_errors_do_not_echo_long_values(cluster: Cluster, credit: CreditClient) -> None:
    tasks = await new_user(credit, cluster)
    for task_type in ("x" * 1024, "y" * 70_000):
        error = await refused(
            tasks.stub.CreateTask(task_pb2.CreateTaskRequest(type=task_type), metadata=tasks.md)
        )
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert len(error.details()) < 200, error.details()
        trailer_bytes = sum(len(k) + len(v) for k, v in error.trailing_metadata() or ())
        assert trailer_bytes < 1024
    status = await refused(
        tasks.stub.ListTasks(task_pb2.ListTasksRequest(status="z" * 1000), metadata=tasks.md)
    )
    assert status.details().startswith("Invalid status: zzzz")
    assert len(status.details()) < 200


async def test_transactions_show_references_not_idempotency_keys(cluster: Cluster) -> None:
    user_id = "user_refs_" + DEFAULT_KEY.kid
    md = bearer(DEFAULT_KEY.mint(user_id))
    users = user_pb2_grpc.UserServiceStub(cluster.channel("user"))
    await users.InitializeUser(user_pb2.InitializeUserRequest(email="r@example.com"), metadata=md)
    tasks = TaskClient(cluster.channel("task"), user_id)
    task = (await tasks.create("video_generation")).task
    await tasks.cancel(task.id)

    listed = await credit_pb2_grpc.CreditServiceStub(cluster.channel("credit")).ListTransactions(
        credit_pb2.ListTransactionsRequest(), metadata=md
    )
    entries = [(e.reference, e.amount) for e in listed.transactions]
    assert entries == [(task.id, 5), (task.id, -5), ("", 10)]
    assert "idempotency_key" not in credit_pb2.LedgerEntry.DESCRIPTOR.fields_by_name
    wire = listed.SerializeToString()
    assert b"signup:" not in wire
    assert b"task:" not in wire
    # The ledger itself still keys them as before.
    keys = cluster.sql(
        "SELECT idempotency_key FROM credit.entries WHERE user_id = %s ORDER BY id", user_id
    )
    assert [k for (k,) in keys] == [
        f"signup:{user_id}:grant",
        f"task:{task.id}",
        f"refund:task:{task.id}",
    ]
