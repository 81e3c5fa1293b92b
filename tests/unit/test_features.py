"""The task-type → plan-feature contract is defined once (services.kit.features): the costs, the
worker's demo processors and the protos' documented values all name the same task types."""

from __future__ import annotations

from typing import Any

from services.kit.features import FEATURES, TaskType, feature_of
from services.task.domain import TASK_COSTS
from services.worker.demo import PROCESSORS
from studiox.api.v1 import contract_pb2
from studiox.billing.v1 import billing_pb2
from studiox.task.v1 import task_pb2

# The contract option's descriptor; typed as Any like scripts/openapi.py does (the stubs type
# extension handles more narrowly than the runtime accepts).
FIELD_RULES: Any = contract_pb2.field


def _values(field: Any) -> list[str]:
    return list(field.GetOptions().Extensions[FIELD_RULES].values)


def test_every_task_type_is_a_feature_with_a_cost_and_a_processor() -> None:
    assert set(TASK_COSTS) == set(FEATURES) == set(PROCESSORS)
    assert [feature_of(t) for t in TaskType] == list(FEATURES)


def test_the_protos_document_the_same_task_types() -> None:
    fields = [
        task_pb2.Task.DESCRIPTOR.fields_by_name["type"],
        task_pb2.CreateTaskRequest.DESCRIPTOR.fields_by_name["type"],
        task_pb2.QuoteTaskRequest.DESCRIPTOR.fields_by_name["type"],
        billing_pb2.TaskPrice.DESCRIPTOR.fields_by_name["type"],
    ]
    for field in fields:
        assert _values(field) == list(FEATURES), field.full_name
