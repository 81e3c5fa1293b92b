"""A list page reads each task's documents as the wire encoding the store keeps beside the jsonb
(migration 0004, services/task/documents.py): the page must show exactly what a single read of the
same task shows, from the jsonb, whatever the documents hold and however the row was written."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.task.documents import encode_input
from studiox.task.v1 import task_pb2
from tests.support.cluster import Cluster, internal_metadata
from tests.support.credit import PRO, CreditClient
from tests.support.tasks import TaskClient, struct

# Any text the API accepts: valid UTF-8 (no lone surrogates), no NUL.
_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
_JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=12,
)
_OBJECT = st.dictionaries(_TEXT, _JSON, max_size=4)
_USAGE = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), st.floats(0, 1e9), max_size=3
)


async def _page(tasks: TaskClient) -> list[task_pb2.Task]:
    reply = await tasks.stub.ListTasks(task_pb2.ListTasksRequest(limit=100), metadata=tasks.md)
    return list(reply.tasks)


async def _finish(tasks: TaskClient, task_id: str, output: Any, usage: dict[str, float]) -> None:
    worker = internal_metadata()
    await tasks.stub.UpdateStatus(
        task_pb2.UpdateStatusRequest(id=task_id, status="processing"), metadata=worker
    )
    done = task_pb2.UpdateStatusRequest(id=task_id, status="done", usage=usage)
    if output is not None:
        done.output_data.CopyFrom(struct(output))
    await tasks.stub.UpdateStatus(done, metadata=worker)


def _encoded(cluster: Cluster, task_id: str) -> tuple[bool, bool, bool]:
    [row] = cluster.sql(
        "SELECT input_pb IS NOT NULL, output_pb IS NOT NULL, usage_pb IS NOT NULL "
        "FROM tasks.tasks WHERE id = %s",
        task_id,
    )
    return row


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    input_data=_OBJECT,
    output=st.none() | _OBJECT,
    usage=_USAGE,
    finished=st.booleans(),
)
async def test_a_page_shows_what_a_single_read_shows(
    cluster: Cluster,
    credit: CreditClient,
    input_data: dict[str, Any],
    output: dict[str, Any] | None,
    usage: dict[str, float],
    finished: bool,
) -> None:
    tasks = TaskClient(cluster.channel("task"), await credit.open_account(PRO))
    created = await tasks.stub.CreateTask(
        task_pb2.CreateTaskRequest(type="advanced_editing", input_data=struct(input_data)),
        metadata=tasks.md,
    )
    task_id = created.task.id
    if finished:
        await _finish(tasks, task_id, output, usage)
    [listed] = await _page(tasks)
    assert listed == await tasks.get(task_id)
    # ...and the page did read the encodings: every document written has one.
    assert _encoded(cluster, task_id) == (True, finished and output is not None, finished)


async def test_a_document_changed_without_its_encoding_is_read_from_the_jsonb(
    cluster: Cluster, credit: CreditClient
) -> None:
    tasks = TaskClient(cluster.channel("task"), await credit.open_account(PRO))
    created = await tasks.create("advanced_editing", prompt="from the api")
    await _finish(tasks, created.task.id, {"url": "https://cdn/a.png"}, {"seconds": 2.0})
    cluster.sql(
        'UPDATE tasks.tasks SET output_data = \'{"url": "https://cdn/fixed.png"}\' WHERE id = %s',
        created.task.id,
    )
    assert _encoded(cluster, created.task.id) == (True, False, True)
    [listed] = await _page(tasks)
    assert dict(listed.output_data) == {"url": "https://cdn/fixed.png"}
    assert dict(listed.input_data) == {"prompt": "from the api"}
    assert dict(listed.usage) == {"seconds": 2.0}
    assert listed == await tasks.get(created.task.id)


async def test_rows_without_encodings_are_listed_from_the_jsonb(
    cluster: Cluster, credit: CreditClient
) -> None:
    tasks = TaskClient(cluster.channel("task"), await credit.open_account(PRO))
    created = await tasks.create("advanced_editing", prompt="before the migration")
    cluster.sql("UPDATE tasks.tasks SET input_pb = NULL WHERE id = %s", created.task.id)
    [listed] = await _page(tasks)
    assert dict(listed.input_data) == {"prompt": "before the migration"}
    assert listed == await tasks.get(created.task.id)


async def test_a_page_takes_the_documents_from_their_encoding(
    cluster: Cluster, credit: CreditClient
) -> None:
    """What the page reads (a single read still takes the jsonb): only the store writes an
    encoding, always with its document, so the two cannot differ except as written here."""
    tasks = TaskClient(cluster.channel("task"), await credit.open_account(PRO))
    created = await tasks.create("advanced_editing", prompt="jsonb")
    cluster.sql(
        "UPDATE tasks.tasks SET input_pb = %s WHERE id = %s",
        encode_input({"prompt": "encoding"}),
        created.task.id,
    )
    [listed] = await _page(tasks)
    assert dict(listed.input_data) == {"prompt": "encoding"}
    assert dict((await tasks.get(created.task.id)).input_data) == {"prompt": "jsonb"}


async def test_stored_bytes_never_override_the_rows_own_fields(
    cluster: Cluster, credit: CreditClient
) -> None:
    """Defence in depth: an encoding is merged before the row's fields are set, so bytes that
    carried other fields (a corrupted or tampered column) cannot change whose task it is."""
    tasks = TaskClient(cluster.channel("task"), await credit.open_account(PRO))
    created = await tasks.create("advanced_editing", prompt="mine")
    forged = task_pb2.Task(user_id="someone_else", status="done", credits_cost=999)
    cluster.sql(
        "UPDATE tasks.tasks SET input_pb = %s WHERE id = %s",
        forged.SerializeToString() + encode_input({"prompt": "mine"}),
        created.task.id,
    )
    [listed] = await _page(tasks)
    assert (listed.user_id, listed.status, listed.credits_cost) == (tasks.user, "pending", 3)
    assert listed == await tasks.get(created.task.id)
