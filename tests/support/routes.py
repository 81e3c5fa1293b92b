"""Every public HTTP route, read from the descriptor Envoy transcodes with (build/api.pb): the
google.api.http rules of the services the gateway routes, so a new endpoint is covered by the tests
that walk this list without anyone adding it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.config import DESCRIPTOR, PUBLIC_ROUTES

# Transcoded as well, though not listed among the routed services: /health.
STATUS_SERVICE = "studiox.status.v1.StatusService"
_PARAM = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")


@dataclass(frozen=True)
class Route:
    rpc: str  # /package.Service/Method
    verb: str  # GET, POST, PATCH, ...
    template: str  # /api/tasks/{id}/cancel
    body: str  # "" (none), "*" (the whole request) or a field name
    request: Descriptor

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.template)

    def fields(self) -> list[FieldDescriptor]:
        """Request fields sent in the query string (no body) or in the JSON body ("*")."""
        bound = set(self.path_params)
        return [f for f in self.request.fields if f.name not in bound]

    def path(self, values: dict[str, str]) -> str:
        return _PARAM.sub(lambda m: values[m.group(1)], self.template)

    def __str__(self) -> str:
        return f"{self.verb} {self.template}"


def public_routes(descriptor_path: Path = DESCRIPTOR) -> list[Route]:
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_path.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:  # protoc writes dependencies first
        pool.AddSerializedFile(file.SerializeToString())
    routes = []
    for file in files.file:
        for service in file.service:
            name = f"{file.package}.{service.name}"
            if name not in PUBLIC_ROUTES and name != STATUS_SERVICE:
                continue
            for method in service.method:
                rule: http_pb2.HttpRule = method.options.Extensions[annotations_pb2.http]
                request = pool.FindMessageTypeByName(method.input_type.lstrip("."))
                for binding in (rule, *rule.additional_bindings):
                    verb = binding.WhichOneof("pattern")
                    if verb is None or verb == "custom":
                        continue
                    routes.append(
                        Route(
                            rpc=f"/{name}/{method.name}",
                            verb=verb.upper(),
                            template=getattr(binding, verb),
                            body=binding.body,
                            request=request,
                        )
                    )
    return routes
