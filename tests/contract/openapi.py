"""Checks requests and responses against a platform's published OpenAPI (3.x) or Swagger (2.0) file.

`request_problems` says what about a request the spec does not document (method and path, unknown
or missing parameters, request body); `response_problems` validates a response body against the
operation's documented success schema. Both return a list of problems: empty means conforming.
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import jsonschema

Operation = dict[str, Any]


class OpenAPISpec:
    def __init__(self, path: Path, *, mount: str = "") -> None:
        """`mount` is the path prefix the sandbox serves this platform under (e.g. "/github")."""
        self.document: dict[str, Any] = json.loads(path.read_text())
        self.mount = mount.rstrip("/")
        self.swagger2 = str(self.document.get("swagger", "")).startswith("2")
        if self.swagger2:
            self.base_path = self.document.get("basePath", "").rstrip("/")
        else:
            self.base_path = urlsplit(self.document["servers"][0]["url"]).path.rstrip("/")

    @cached_property
    def _templates(self) -> list[tuple[re.Pattern[str], str]]:
        patterns = []
        for template in self.document["paths"]:
            regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            patterns.append((re.compile(f"^{regex}$"), template))
        # literal paths before templated ones (/users/me before /users/{user_id})
        return sorted(patterns, key=lambda p: p[1].count("{"))

    def spec_path(self, url_path: str) -> str:
        prefix = self.mount + self.base_path
        if not url_path.startswith(prefix):
            raise AssertionError(f"{url_path} is not under {prefix}")
        return url_path[len(prefix) :] or "/"

    def operation(self, method: str, url_path: str) -> tuple[str, Operation] | None:
        path = self.spec_path(url_path)
        for pattern, template in self._templates:
            if pattern.match(path):
                op = self.document["paths"][template].get(method.lower())
                return (template, op) if op is not None else None
        return None

    def _parameters(self, template: str, op: Operation) -> list[dict[str, Any]]:
        shared = self.document["paths"][template].get("parameters", [])
        return [self.resolve(p) for p in [*shared, *op.get("parameters", [])]]

    def request_problems(self, request: httpx2.Request) -> list[str]:
        found = self.operation(request.method, request.url.path)
        if found is None:
            return [f"{request.method} {request.url.path} is not a documented operation"]
        template, op = found
        problems = []
        params = self._parameters(template, op)
        documented = {p["name"] for p in params if p.get("in") == "query"}
        sent = {key for key, _ in request.url.params.multi_items()}
        for name in sorted(sent - documented):
            problems.append(f"{op.get('operationId', template)}: query parameter {name!r} is not documented")
        for p in params:
            if p.get("required") and p.get("in") == "query" and p["name"] not in sent:
                problems.append(f"{op.get('operationId', template)}: required query parameter {p['name']!r} missing")
            if p.get("required") and p.get("in") == "header" and p["name"].lower() not in request.headers:
                problems.append(f"{op.get('operationId', template)}: required header {p['name']!r} missing")
        body_schema = self.request_body_schema(op)
        if request.content:
            if body_schema is None:
                problems.append(f"{op.get('operationId', template)}: sends a body, none is documented")
            else:
                problems.extend(_validate(json.loads(request.content), body_schema, "request body"))
        return problems

    def request_body_schema(self, op: Operation) -> dict[str, Any] | None:
        if self.swagger2:
            body = next((self.resolve(p) for p in op.get("parameters", []) if p.get("in") == "body"), None)
            return self.schema(body["schema"]) if body else None
        content = (self.resolve(op.get("requestBody", {})).get("content") or {}).get("application/json")
        return self.schema(content["schema"]) if content and "schema" in content else None

    def response_schema(self, method: str, url_path: str, status: int = 200) -> dict[str, Any] | None:
        found = self.operation(method, url_path)
        if found is None:
            return None
        _, op = found
        response = op.get("responses", {}).get(str(status))
        if response is None:
            return None
        response = self.resolve(response)
        if self.swagger2:
            raw = response.get("schema")
        else:
            raw = ((response.get("content") or {}).get("application/json") or {}).get("schema")
        return self.schema(raw) if raw is not None else None

    def response_problems(self, request: httpx2.Request, response: httpx2.Response) -> list[str]:
        schema = self.response_schema(request.method, request.url.path, response.status_code)
        if schema is None:
            return [f"{request.method} {request.url.path}: no documented {response.status_code} response schema"]
        return _validate(response.json(), schema, f"{request.method} {request.url.path} response")

    # -- schema helpers ------------------------------------------------------------------------

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while isinstance(node, dict) and "$ref" in node:
            node = self._lookup(node["$ref"])
        return node

    def _lookup(self, ref: str) -> Any:
        assert ref.startswith("#/"), ref
        node: Any = self.document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def schema(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Inline `$ref`s and turn OpenAPI 3.0 `nullable` into JSON Schema, for `jsonschema`."""
        return self._convert(raw, ())

    def _convert(self, node: Any, trail: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [self._convert(n, trail) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"]
            if ref in trail or len(trail) > 12:  # recursive schema: stop checking below this point
                return {}
            return self._convert(self._lookup(ref), (*trail, ref))
        # Slack's normalized spec keeps its "one of" alternatives under x-slack-one-of: check them as anyOf
        node = {("anyOf" if k == "x-slack-one-of" else k): v for k, v in node.items()}
        out = {k: self._convert(v, trail) for k, v in node.items() if not k.startswith("x-")}
        # Asana: `allOf: [{$ref}, {nullable: true}]`: the null belongs to the whole allOf
        if any(isinstance(m, dict) and m.get("nullable") for m in node.get("allOf", [])):
            out = {"anyOf": [out, {"type": "null"}]}
        if out.pop("nullable", False):
            if "type" in out:
                out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
            for key in ("anyOf", "oneOf"):
                if key in out:
                    out[key] = [*out[key], {"type": "null"}]
            if "allOf" in out or "enum" in out:
                out = {"anyOf": [out, {"type": "null"}]}
        if "enum" in out and isinstance(out.get("type"), list) and "null" in out["type"]:
            out["enum"] = [*out["enum"], None]
        for key in ("discriminator", "example", "examples", "xml", "externalDocs", "readOnly", "writeOnly", "deprecated"):
            out.pop(key, None)
        return out


def _validate(instance: Any, schema: dict[str, Any], what: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{what}: {'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message[:300]}"
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))[:20]
    ]
