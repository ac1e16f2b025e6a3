"""Checks requests and responses against a contract restated from prose (HubSpot's and Gong's
CONTRACT.md): a table of `Operation`s, each with its method, path template, documented query
parameters and JSON Schemas for the request body and the success body, plus the auth scheme and the
error body every failure must have. Both checks return a list of problems: empty means conforming.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2
import jsonschema

Schema = Mapping[str, Any]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # template: "/crm/v3/objects/{objectType}/search"
    query: frozenset[str] = frozenset()
    required_query: frozenset[str] = frozenset()
    body: Schema | None = None  # None: the operation takes no body
    response: Schema | None = None
    #: per path parameter, the values the contract allows (a regex)
    path_params: Mapping[str, str] = field(default_factory=dict)
    #: per query parameter, the values the contract allows (a regex)
    query_values: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        found = re.fullmatch(regex, path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class ProseContract:
    operations: Sequence[Operation]
    mount: str  # where the sandbox serves the platform, e.g. "/hubspot"
    auth: Callable[[str], bool]  # is this Authorization header the documented scheme?
    error: Schema  # every 4xx/5xx body

    def find(self, request: httpx2.Request) -> tuple[Operation, dict[str, str]] | None:
        path = request.url.path.removeprefix(self.mount)
        # literal paths first (/v2/calls/extensive before /v2/calls/{id})
        for op in sorted(self.operations, key=lambda o: o.path.count("{")):
            params = op.match(request.method, path)
            if params is not None:
                return op, params
        return None

    def request_problems(self, request: httpx2.Request) -> list[str]:
        found = self.find(request)
        if found is None:
            return [f"{request.method} {request.url.path} is not a documented operation"]
        op, path_params = found
        problems = []
        if not self.auth(request.headers.get("authorization", "")):
            problems.append(f"{op.name}: Authorization header is not the documented scheme")
        for name, pattern in op.path_params.items():
            if not re.fullmatch(pattern, path_params[name]):
                problems.append(f"{op.name}: path parameter {name}={path_params[name]!r} is not allowed")
        sent = dict(request.url.params.multi_items())
        for name in sorted(set(sent) - op.query):
            problems.append(f"{op.name}: query parameter {name!r} is not documented")
        for name in sorted(op.required_query - set(sent)):
            problems.append(f"{op.name}: required query parameter {name!r} missing")
        for name, pattern in op.query_values.items():
            if name in sent and not re.fullmatch(pattern, sent[name]):
                problems.append(f"{op.name}: {name}={sent[name]!r} is not an allowed value")
        if op.body is None:
            if request.content:
                problems.append(f"{op.name}: sends a body, none is documented")
        else:
            if request.headers.get("content-type", "").split(";")[0] != "application/json":
                problems.append(f"{op.name}: body is not sent as application/json")
            problems.extend(
                f"{op.name}: body: {p}" for p in schema_problems(op.body, json.loads(request.content or b"null"))
            )
        return problems

    def response_problems(self, request: httpx2.Request, response: httpx2.Response) -> list[str]:
        found = self.find(request)
        if found is None:
            return []
        op = found[0]
        try:
            body = response.json()
        except ValueError:
            return [f"{op.name}: answered {response.status_code} with a body that is not JSON"]
        schema = self.error if response.status_code >= 400 else op.response
        if schema is None:
            return []
        return [f"{op.name} ({response.status_code}): {p}" for p in schema_problems(schema, body)]


def schema_problems(schema: Schema, instance: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(instance)]


def obj(required: Mapping[str, Any], optional: Mapping[str, Any] | None = None, *, closed: bool = False) -> Schema:
    """An object schema: `required` fields must be there; `closed` forbids any field not listed."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": list(required),
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


def array(items: Schema, *, max_items: int | None = None, min_items: int = 0) -> Schema:
    schema: dict[str, Any] = {"type": "array", "items": items, "minItems": min_items}
    if max_items is not None:
        schema["maxItems"] = max_items
    return schema


STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
INTEGER: Schema = {"type": "integer"}
ISO_8601 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
DATE_TIME: Schema = {"type": "string", "pattern": ISO_8601}
