"""Processors and where they come from.

A processor turns one task into its output: a callable taking a `ClaimedTask` and returning (or, if
async, resolving to) a JSON object. Async processors run on the worker's event loop and can be
interrupted at shutdown; plain functions run in a thread (they cannot be interrupted, so keep them
for short CPU work). A processor may return `Measured(output, usage)` to report what the work
measured (tasks priced by usage are charged by it). A processor signals how the task should end by what it raises:

- `TaskFailed(message)`: the input cannot be processed; the task fails, its credits are refunded
  and `message` is shown to the user (keep it free of internals).
- `RetryLater(reason)`, or any other exception: a transient problem; the lease is released and the
  task is retried, up to the task service's attempt limit (then it fails with a refund).

Processors are found per task type, in this order: explicit `type=module:attribute` pairs (the
`--processor` option, then `WORKER_PROCESSORS`), the `--demo` set, then the `studiox.processors`
entry-point group (entry point name = task type), so a processor package only has to be installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, cast

from services.worker.client import ClaimedTask

ENTRY_POINT_GROUP = "studiox.processors"

Output = Mapping[str, Any]


@dataclass(frozen=True)
class Measured:
    """An output with what the work measured, in the units of the type's price rule (e.g.
    `{"seconds": 4.2}` of video produced): the task is charged by it, never above what creation
    reserved. A plain output reports nothing measured (the reservation is charged)."""

    output: Output
    usage: Mapping[str, float]


Result = Output | Measured
Processor = Callable[[ClaimedTask], Awaitable[Result] | Result]


class TaskFailed(Exception):
    """The task cannot be done; it fails with a refund and this message is shown to its user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RetryLater(Exception):
    """A transient problem: give the task back to be retried by the next claim."""


class ConfigurationError(Exception):
    """The processor configuration cannot be used (unknown type, bad import path, missing type)."""


def parse_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """`type=module:attribute` items (each may itself be a comma-separated list) as a mapping."""
    found: dict[str, str] = {}
    for item in pairs:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            task_type, sep, target = part.partition("=")
            if not sep or not task_type.strip() or ":" not in target:
                raise ConfigurationError(f"expected TYPE=module:attribute, got {part!r}")
            found[task_type.strip()] = target.strip()
    return found


def load(target: str) -> Processor:
    module_name, _, attribute = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for name in attribute.split("."):
            obj = getattr(obj, name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load processor {target!r}: {exc}") from exc
    if not callable(obj):
        raise ConfigurationError(f"processor {target!r} is not callable")
    return cast(Processor, obj)


def _entry_points() -> dict[str, Processor]:
    return {ep.name: cast(Processor, ep.load()) for ep in entry_points(group=ENTRY_POINT_GROUP)}


def resolve(
    task_types: Iterable[str],
    explicit: Mapping[str, str] | None = None,
    defaults: Mapping[str, Processor] | None = None,
    discover: Callable[[], Mapping[str, Processor]] = _entry_points,
) -> dict[str, Processor]:
    """One processor for every task type. A worker must serve them all: claims are not filtered by
    type, so a type without a processor would only ever be given back."""
    wanted = list(task_types)
    explicit = dict(explicit or {})
    unknown = sorted(set(explicit) - set(wanted))
    if unknown:
        raise ConfigurationError(
            f"unknown task type(s): {', '.join(unknown)}; valid: {', '.join(wanted)}"
        )
    registry = {t: load(target) for t, target in explicit.items()}
    for task_type, processor in (defaults or {}).items():
        registry.setdefault(task_type, processor)
    missing = [t for t in wanted if t not in registry]
    if missing:
        installed = discover()
        for task_type in missing:
            if task_type in installed:
                registry[task_type] = installed[task_type]
    missing = [t for t in wanted if t not in registry]
    if missing:
        raise ConfigurationError(
            f"no processor for {', '.join(missing)}: install one under the "
            f"'{ENTRY_POINT_GROUP}' entry points, pass --processor TYPE=module:attribute, "
            "or use --demo on a development stack"
        )
    return {t: registry[t] for t in wanted}
