"""One error hierarchy for the whole server.

Each error carries a stable `type` (RFC 9457 problem type), the HTTP status the REST shim answers
with, and a message written for the caller: it says what happened and what to do. MCP tools turn
the same errors into `isError` results. No message ever contains a credential.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://sophia-mcp.dev/problems/"


class SophiaError(Exception):
    type: ClassVar[str] = "internal"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    retriable: ClassVar[bool] = False

    def __init__(self, message: str, *, platform: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.platform = platform
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.message,
        }
        if instance:
            body["instance"] = instance
        if self.platform:
            body["platform"] = self.platform
        body.update(self.extra)
        return body


class NotConfigured(SophiaError):
    type = "not-configured"
    status = 503
    title = "Platform not configured"

    def __init__(self, platform: str, variables: list[str]) -> None:
        names = " and ".join(variables)
        super().__init__(
            f"{platform} is not configured: set {names} (see README, Configuration), "
            "or run `sophia-mcp serve --demo` to use the built-in sandbox.",
            platform=platform,
            missing=variables,
        )


class BadInput(SophiaError):
    type = "bad-input"
    status = 400
    title = "Bad input"


class UnknownPlatform(SophiaError):
    type = "unknown-platform"
    status = 404
    title = "Unknown platform"


class UpstreamUnauthorized(SophiaError):
    type = "upstream-unauthorized"
    status = 401
    title = "Platform rejected the credentials"


class Forbidden(SophiaError):
    type = "forbidden"
    status = 403
    title = "Forbidden"


class NotFound(SophiaError):
    type = "not-found"
    status = 404
    title = "Not found"


class MethodNotAllowed(SophiaError):
    type = "method-not-allowed"
    status = 405
    title = "Method not allowed"


class RateLimited(SophiaError):
    type = "rate-limited"
    status = 429
    title = "Rate limited"
    retriable = True

    def __init__(self, message: str, *, platform: str | None = None, retry_after: float | None = None) -> None:
        extra = {} if retry_after is None else {"retry_after": round(retry_after, 1)}
        super().__init__(message, platform=platform, **extra)
        self.retry_after = retry_after


class UpstreamUnavailable(SophiaError):
    type = "upstream-unavailable"
    status = 502
    title = "Platform unavailable"
    retriable = True


class UpstreamTimeout(SophiaError):
    type = "upstream-timeout"
    status = 504
    title = "Platform timed out"
    retriable = True


class CircuitOpen(SophiaError):
    type = "circuit-open"
    status = 503
    title = "Platform temporarily disabled"
    retriable = True


class Unauthenticated(SophiaError):
    type = "unauthenticated"
    status = 401
    title = "Authentication required"
