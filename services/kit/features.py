"""The task-type → plan-feature contract, defined once.

A task's type is also the name of the plan feature it needs: the task service charges a task of
type T with feature `feature_of(T)`, the ledger refuses the charge (403) unless the account's plan
terms list that feature, and billing's catalog says which plans include a type by the same name.
The protos' `values` lists for task types repeat these names for the OpenAPI document (the proto
option cannot import Python); tests/unit/test_features.py holds them equal."""

from __future__ import annotations

from enum import StrEnum


class TaskType(StrEnum):
    IMAGE_ANALYSIS = "image_analysis"
    VIDEO_GENERATION = "video_generation"
    ADVANCED_EDITING = "advanced_editing"


# Every plan feature there is: one per task type.
FEATURES: tuple[str, ...] = tuple(t.value for t in TaskType)


def feature_of(task_type: str) -> str:
    """The plan feature a task of `task_type` needs: the type's own name. Not checked against
    `TaskType` here, so a type added by a newer task service still prices (and is refused by plans
    that lack it) during a rolling deploy."""
    return task_type
