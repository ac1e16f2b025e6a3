"""Executes GraphQL against a platform's published schema (Linear, GitHub) over in-memory objects.

Queries are parsed, validated and executed by graphql-core against the real SDL, so a query the
real API would reject is rejected here too, and answers are shaped exactly by the query. Objects
are dicts keyed by GraphQL field names; a field that takes arguments is a callable
`(info, **args)`, which graphql-core's default resolver calls.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import graphql

SCHEMAS = Path(__file__).parent / "schemas"
Node = dict[str, Any]


@cache
def load_schema(name: str) -> graphql.GraphQLSchema:
    """Build a packaged schema once (about 1.5 s for Linear's or GitHub's SDL)."""
    return graphql.build_schema((SCHEMAS / f"{name}.graphql").read_text(), assume_valid_sdl=True)


async def execute(schema: graphql.GraphQLSchema, body: Any, root: Node) -> dict[str, Any]:
    """Run one `{"query", "variables", "operationName"}` request; returns the response body."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return {"errors": [{"message": "Must provide query string."}]}
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return {"errors": [{"message": "Variables must be provided as an Object where each property is a variable value."}]}
    try:
        document = graphql.parse(body["query"])
    except graphql.GraphQLError as error:
        return {"errors": [error.formatted]}
    problems = graphql.validate(schema, document)
    if problems:
        return {"errors": [e.formatted for e in problems]}
    result = graphql.execute(
        schema, document, root_value=root, variable_values=variables, operation_name=body.get("operationName")
    )
    if graphql.pyutils.is_awaitable(result):
        result = await result  # type: ignore[misc]
    assert isinstance(result, graphql.ExecutionResult)
    response: dict[str, Any] = {"data": result.data}
    if result.errors:
        response["errors"] = [e.formatted for e in result.errors]
    return response


def encode_cursor(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def decode_cursor(cursor: str) -> str:
    try:
        return base64.b64decode(cursor.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise graphql.GraphQLError(f"Invalid cursor: {cursor}") from None


def connection(
    nodes: Sequence[Node],
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    default_size: int = 50,
    max_size: int = 250,
    cursor_key: str = "id",
    extra: Node | None = None,
) -> Node:
    """A Relay connection over `nodes` (already filtered and ordered), paged by opaque cursors."""
    for name, size in (("first", first), ("last", last)):
        if size is not None and not 0 <= size <= max_size:
            raise graphql.GraphQLError(f"Argument `{name}` must be between 0 and {max_size}.")
    keys = [str(n[cursor_key]) for n in nodes]
    start, end = 0, len(nodes)
    if after is not None:
        key = decode_cursor(after)
        start = keys.index(key) + 1 if key in keys else len(nodes)
    if before is not None:
        key = decode_cursor(before)
        end = keys.index(key) if key in keys else end
    window = list(range(start, end))
    if first is None and last is None:
        first = default_size
    if first is not None:
        window = window[:first]
    if last is not None:
        window = window[-last:] if last else []
    page = [nodes[i] for i in window]
    cursors = [encode_cursor(keys[i]) for i in window]
    return {
        "nodes": page,
        "edges": [{"node": n, "cursor": c} for n, c in zip(page, cursors, strict=True)],
        "totalCount": len(nodes),
        "pageInfo": {
            "hasNextPage": bool(window) and window[-1] < end - 1,
            "hasPreviousPage": bool(window) and window[0] > 0,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
        **(extra or {}),
    }


def connection_field(nodes: Callable[[], Sequence[Node]], **defaults: Any) -> Callable[..., Node]:
    """A field resolver `(info, first=, after=, ...)` paging over `nodes()`, filter-aware."""

    def resolve(info: Any = None, **args: Any) -> Node:
        items = nodes()
        if args.get("filter"):
            items = [n for n in items if matches(n, args["filter"])]
        return connection(
            items,
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
            **defaults,
        )

    return resolve


_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda v, x: v == x,
    "neq": lambda v, x: v != x,
    "in": lambda v, x: v in x,
    "nin": lambda v, x: v not in x,
    "null": lambda v, x: (v is None) == x,
    "lt": lambda v, x: v is not None and v < x,
    "lte": lambda v, x: v is not None and v <= x,
    "gt": lambda v, x: v is not None and v > x,
    "gte": lambda v, x: v is not None and v >= x,
    "contains": lambda v, x: v is not None and x in v,
    "containsIgnoreCase": lambda v, x: v is not None and x.lower() in v.lower(),
    "notContains": lambda v, x: v is None or x not in v,
    "startsWith": lambda v, x: v is not None and v.startswith(x),
    "endsWith": lambda v, x: v is not None and v.endswith(x),
    "eqIgnoreCase": lambda v, x: v is not None and v.lower() == x.lower(),
}


def matches(node: Node | None, condition: dict[str, Any]) -> bool:
    """Linear-style filter evaluation: nested objects, `and`/`or`, and comparators."""
    for key, expected in condition.items():
        if expected is None:
            continue
        if key == "and":
            if not all(matches(node, c) for c in expected):
                return False
        elif key == "or":
            if not any(matches(node, c) for c in expected):
                return False
        elif key in _COMPARATORS:
            if not _COMPARATORS[key](node, expected):
                return False
        elif key in ("some", "every"):
            values = _resolve_list(node)
            test = any if key == "some" else all
            if not test(matches(v, expected) for v in values):
                return False
        else:
            value = node.get(key) if isinstance(node, dict) else None
            if callable(value):
                value = _resolve_list(value)
            if isinstance(value, dict) or value is None and not set(expected) & set(_COMPARATORS):
                if not matches(value, expected):
                    return False
            elif isinstance(value, list):
                if not any(matches(v, expected) for v in value) and not _compare(value, expected):
                    return False
            elif not all(_COMPARATORS[op](value, x) for op, x in expected.items() if op in _COMPARATORS):
                return False
    return True


def _compare(value: Any, expected: dict[str, Any]) -> bool:
    return all(_COMPARATORS[op](value, x) for op, x in expected.items() if op in _COMPARATORS)


def _resolve_list(value: Any) -> list[Any]:
    if callable(value):
        value = value(None)
    if isinstance(value, dict) and "nodes" in value:
        return list(value["nodes"])
    return list(value or [])


def text_search(nodes: Iterable[Node], term: str, fields: Sequence[str]) -> list[Node]:
    words = term.lower().split()
    return [n for n in nodes if all(any(w in str(n.get(f) or "").lower() for f in fields) for w in words)]
