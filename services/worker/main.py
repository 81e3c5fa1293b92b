"""`studiox worker` (also `python -m services.worker`): run the worker until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--demo",
        action="store_true",
        help="use the DEMO processors (placeholder results, no AI) for every type not given "
        "otherwise; refused with APP_ENV=production",
    )
    parser.add_argument(
        "--processor",
        action="append",
        default=[],
        metavar="TYPE=module:attribute",
        help="processor of one task type (repeatable); overrides WORKER_PROCESSORS and entry points",
    )
    parser.add_argument("--concurrency", type=int, help="tasks at once (WORKER_CONCURRENCY)")


def run(ns: argparse.Namespace) -> int:
    import asyncio
    import signal

    from services.kit.clients import ServiceChannels
    from services.kit.logs import configure_logging
    from services.kit.settings import startup_settings
    from services.task.domain import TASK_COSTS
    from services.worker import demo
    from services.worker.client import GrpcTaskQueue, QueueRefused
    from services.worker.config import WorkerConfig
    from services.worker.processors import ConfigurationError, parse_pairs, resolve
    from services.worker.runtime import Worker

    # An insecure configuration in production ends the worker with one line per problem.
    settings = startup_settings("worker")
    configure_logging("worker", settings.log_level, settings.log_format)
    overrides = {"concurrency": ns.concurrency} if ns.concurrency else {}
    config = WorkerConfig(**overrides)
    if ns.demo and settings.is_production:
        print("--demo is refused with APP_ENV=production", file=sys.stderr)
        return 2
    try:
        explicit = parse_pairs([config.processors, *ns.processor])
        processors = resolve(TASK_COSTS, explicit, demo.PROCESSORS if ns.demo else None)
    except ConfigurationError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 2

    async def serve() -> None:
        queue = GrpcTaskQueue(ServiceChannels(settings), config.rpc_timeout_seconds)
        worker = Worker(queue, processors, config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        try:
            await worker.run()
        finally:
            await queue.close()

    try:
        asyncio.run(serve())
    except QueueRefused as exc:
        print(f"worker: the task service refused this worker: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.worker", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
