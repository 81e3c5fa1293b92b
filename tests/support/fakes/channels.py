"""gRPC channels whose calls reach in-memory fakes of the other services. The real generated stubs
run on them; requests and replies cross as bytes (so a fake answers with the reply type the stub
expects); a DomainError a fake raises arrives as the AioRpcError the real server interceptor would
send (code, ErrorInfo, x-error-reason: services.kit.errors.status_for), so the caller's own
error handling (services.kit.errors.domain_error) runs unchanged. `FakeService.fail` simulates
the transport: a call that never arrives, or one applied whose answer is lost."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message

from services.kit.clients import ServiceChannels
from services.kit.errors import DomainError, message_for, status_for
from services.kit.settings import ServiceName
from tests.support.fakes.journal import Journal


@dataclass
class _Fault:
    method: str
    code: grpc.StatusCode
    after_applying: bool
    times: int


def rpc_error(code: grpc.StatusCode, details: str, trailers: tuple[Any, ...] = ()) -> Exception:
    error: Exception = grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailers), details=details
    )
    return error


class FakeService:
    """Base of the fake services: RPCs are async methods named as in the proto, taking and
    returning the proto messages. Every call that arrives is journaled as `<name>.<Method>` and kept
    in `calls`."""

    name: str = "service"

    def __init__(self, journal: Journal | None = None) -> None:
        self.journal = journal or Journal()
        self.calls: list[tuple[str, Message]] = []
        self._faults: list[_Fault] = []
        # Called with the method name as a call arrives, before it is applied: a test looks at
        # the caller's state at that moment (what it had committed) or changes the world.
        self.on_call: Callable[[str], None] | None = None

    def fail(
        self,
        method: str,
        *,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        after_applying: bool = False,
        times: int = 1,
    ) -> None:
        """The next `times` calls of `method` fail in transport with `code`: before reaching the
        service, or (`after_applying`) once the service applied them, the answer being lost."""
        self._faults.append(_Fault(method, code, after_applying, times))

    def requests(self, method: str) -> list[Any]:
        return [request for name, request in self.calls if name == method]

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method == method:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def dispatch(self, method: str, request: Message) -> Message:
        fault = self._take_fault(method)
        if fault is not None and not fault.after_applying:
            raise rpc_error(fault.code, "connection refused")
        self.calls.append((method, request))
        self.journal.add(f"{self.name}.{method}")
        if self.on_call is not None:
            self.on_call(method)
        handler: Callable[[Message], Awaitable[Message]] | None = getattr(self, method, None)
        if handler is None:
            raise rpc_error(grpc.StatusCode.UNIMPLEMENTED, f"{self.name} fake has no {method}")
        try:
            reply = await handler(request)
        except DomainError as err:
            code, trailers = status_for(err)
            raise rpc_error(code, message_for(err), trailers) from None
        if fault is not None:
            raise rpc_error(fault.code, "deadline exceeded")
        return reply


class FakeChannel:
    def __init__(self, service: FakeService) -> None:
        self._service = service

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        **_options: Any,
    ) -> Callable[..., Awaitable[Any]]:
        name = method.rsplit("/", 1)[-1]
        service = self._service

        async def call(request: Message, **_call_options: Any) -> Any:
            assert request_serializer is not None
            assert response_deserializer is not None
            sent = type(request).FromString(request_serializer(request))
            reply = await service.dispatch(name, sent)
            return response_deserializer(reply.SerializeToString())

        return call


class FakeChannels(ServiceChannels):
    """ServiceChannels over fakes: `FakeChannels(credit=FakeCredit(), billing=...)`."""

    # No super().__init__(): no settings, no sockets.
    def __init__(self, **services: FakeService) -> None:
        self._services: dict[str, FakeService] = dict(services)

    def channel(self, service: ServiceName) -> Any:
        if service not in self._services:
            raise AssertionError(f"no fake given for the {service} service")
        return FakeChannel(self._services[service])

    async def close(self) -> None:
        return None
