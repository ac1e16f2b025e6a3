"""What every connector shares: an HTTP client with timeouts, retries (exponential backoff with
jitter, honouring Retry-After), a token bucket at the platform's documented rate, a circuit
breaker, error classification, and opaque cursors.

A connector holds no global state and reads credentials only from `Settings`. Tests inject an
`httpx2` transport (`httpx2.MockTransport(handler)` or the sandbox's ASGI app).
"""

from __future__ import annotations

import base64
import email.utils
import functools
import hashlib
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import anyio
import httpx2

from sophia_mcp import metrics
from sophia_mcp.config import ENV_PREFIX, Settings
from sophia_mcp.errors import (
    BadInput,
    CircuitOpen,
    Forbidden,
    NotConfigured,
    NotFound,
    RateLimited,
    SophiaError,
    UpstreamTimeout,
    UpstreamUnauthorized,
    UpstreamUnavailable,
)
from sophia_mcp.models import Project, ProjectPage, ProjectStatus, SearchHit

USER_AGENT = "sophia-mcp/0.1 (+https://github.com/sophia-mcp/sophia-mcp)"
MAX_RETRY_AFTER = 10.0  # seconds: a longer Retry-After is reported to the caller instead of waited out


@dataclass(frozen=True)
class RateSpec:
    """A token bucket: `per_second` sustained, `burst` at once (the platform's documented limit)."""

    per_second: float
    burst: int


class TokenBucket:
    def __init__(self, spec: RateSpec) -> None:
        self.spec = spec
        self.tokens = float(spec.burst)
        self.updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.spec.burst, self.tokens + (now - self.updated) * self.spec.per_second)
        self.updated = now

    def free_now(self) -> int:
        """How many tokens can be taken at once without waiting (none is taken)."""
        self._refill()
        return max(0, int(self.tokens))

    def delay_for_one(self) -> float:
        """Take one token; return how long the caller must wait before using it."""
        self._refill()
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.spec.per_second

    async def take(self, budget: str, platform: str) -> None:
        """Wait for a token; if that would take longer than MAX_RETRY_AFTER, give it back and say so
        (`budget` names what is spent, e.g. "Linear issue search (30 a minute)")."""
        wait = self.delay_for_one()
        if wait > MAX_RETRY_AFTER:
            self.give_back()
            raise RateLimited(
                f"sophia-mcp's budget for {budget} is spent; try again in {wait:.0f} s.",
                platform=platform,
                retry_after=wait,
            )
        if wait:
            await anyio.sleep(wait)

    def give_back(self) -> None:
        """Return a token taken for a request that was not sent."""
        self.tokens = min(self.spec.burst, self.tokens + 1)

    def hold_off(self, seconds: float) -> None:
        """The platform said wait (Retry-After): the next token is `seconds` away, for every caller."""
        self._refill()
        self.tokens = min(self.tokens, 1 - seconds * self.spec.per_second)


class CircuitBreaker:
    """Opens after `threshold` consecutive upstream failures; after `cooldown` seconds one trial
    call goes through (half-open), and its outcome closes or re-opens the circuit."""

    def __init__(self, platform: str, threshold: int = 5, cooldown: float = 30.0, trial_window: float = 20.0) -> None:
        self.platform = platform
        self.threshold = threshold
        self.cooldown = cooldown
        self.trial_window = trial_window  # how long the half-open trial may take before another is allowed
        self.failures = 0
        self.opened_at: float | None = None

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if time.monotonic() - self.opened_at >= self.cooldown else "open"

    def check(self) -> None:
        state = self.state
        if state == "half-open":  # this caller is the one trial; the others stay blocked meanwhile
            self.opened_at = time.monotonic() - self.cooldown + self.trial_window
            return
        if state == "open":
            assert self.opened_at is not None
            wait = self.cooldown - (time.monotonic() - self.opened_at)
            raise CircuitOpen(
                f"{self.platform} failed {self.failures} times in a row; calls are paused for {wait:.0f} s "
                "to let it recover. Try again then.",
                platform=self.platform,
                retry_after=round(wait, 1),
            )

    def record(self, ok: bool) -> None:
        if ok:
            self.failures, self.opened_at = 0, None
        else:
            self.failures += 1
            if self.failures >= self.threshold:
                self.opened_at = time.monotonic()
        metrics.CIRCUIT_OPEN.labels(self.platform).set(0 if self.opened_at is None else 1)


def encode_cursor(platform: str, state: Mapping[str, Any]) -> str:
    raw = json.dumps({"p": platform, **state}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(platform: str, cursor: str | None) -> dict[str, Any]:
    """The platform's own cursor state, or {} for the first page. Refuses a cursor from elsewhere."""
    if not cursor:
        return {}
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(state, dict) or state.pop("p") != platform:
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError):
        raise BadInput(
            "cursor is not valid here: pass the `next_cursor` value exactly as a previous call of the same "
            "tool returned it, or omit it for the first page.",
            platform=platform,
        ) from None
    return state


def retry_after_seconds(response: httpx2.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the HTTP-date form
        return max(0.0, (email.utils.parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


class Connector:
    """Base of the seven connectors. Subclasses set the class attributes and `auth_headers`."""

    platform: ClassVar[str]
    title: ClassVar[str]
    #: settings fields that must be set for the platform to be configured
    credential_fields: ClassVar[tuple[str, ...]]
    base_url_field: ClassVar[str]
    #: further settings whose value changes what the platform answers (they join the cache key)
    identity_fields: ClassVar[tuple[str, ...]] = ()
    rate: ClassVar[RateSpec] = RateSpec(per_second=5, burst=20)
    backoff_base: ClassVar[float] = 0.25
    backoff_cap: ClassVar[float] = 8.0

    def __init__(self, settings: Settings, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.transport = transport
        self.bucket = TokenBucket(self.rate)
        self.breaker = CircuitBreaker(self.platform)
        self._client: httpx2.AsyncClient | None = None
        self._identity: str | None = None

    # -- configuration ------------------------------------------------------------------------

    @property
    def base_url(self) -> str | None:
        return getattr(self.settings, self.base_url_field)

    def missing_settings(self) -> list[str]:
        missing = [f for f in self.credential_fields if getattr(self.settings, f) is None]
        if self.base_url is None:
            missing.append(self.base_url_field)
        return [ENV_PREFIX + f.upper() for f in missing]

    @functools.cached_property
    def configured(self) -> bool:
        """Settings are immutable, so this is worked out once (fan-outs ask it per platform per call)."""
        return not self.missing_settings()

    def require_configured(self) -> None:
        if not self.configured:
            raise NotConfigured(self.platform, self.missing_settings())

    def credential_identity(self) -> str:
        """A short digest that tells credentials apart (for cache keys) without revealing them;
        settings are immutable, so it is computed once."""
        if self._identity is None:
            digest = hashlib.sha256(str(self.base_url).encode())
            for field in (*self.credential_fields, *self.identity_fields):
                secret = getattr(self.settings, field)
                value = secret.get_secret_value() if hasattr(secret, "get_secret_value") else str(secret)
                digest.update(b"\0" + value.encode())
            self._identity = digest.hexdigest()[:16]
        return self._identity

    def auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    # -- HTTP ---------------------------------------------------------------------------------

    @property
    def client(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(
                transport=self.transport,
                timeout=httpx2.Timeout(self.settings.http_timeout, connect=min(5.0, self.settings.http_timeout)),
                limits=httpx2.Limits(max_connections=20, max_keepalive_connections=10),
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}{path}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx2.Response:
        """Send one request with retries; return the successful response or raise a SophiaError."""
        self.require_configured()
        attempts = self.settings.http_max_retries + 1
        params = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in range(attempts):
            self.breaker.check()
            await self.throttle(method, path)
            started = time.perf_counter()
            try:
                response = await self.client.request(
                    method,
                    self.url(path),
                    params=params or None,
                    json=json_body,
                    headers={**self.auth_headers(), **(headers or {})},
                )
                await response.aread()
            except httpx2.TimeoutException:
                error: SophiaError = UpstreamTimeout(
                    f"{self.title} did not answer within {self.settings.http_timeout:g} s; try again shortly.",
                    platform=self.platform,
                )
                status_label = "timeout"
            except httpx2.TransportError as exc:
                error = UpstreamUnavailable(
                    f"could not reach {self.title} ({type(exc).__name__}); check SOPHIA_"
                    f"{self.base_url_field.upper()} and the network, then try again.",
                    platform=self.platform,
                )
                status_label = "error"
            else:
                status_label = str(response.status_code)
                metrics.UPSTREAM_REQUESTS.labels(self.platform, status_label).inc()
                metrics.UPSTREAM_DURATION.labels(self.platform).observe(time.perf_counter() - started)
                error_or_none = self.classify(response)
                if error_or_none is None:
                    self.breaker.record(ok=True)
                    return response
                error = error_or_none
                metrics.UPSTREAM_ERRORS.labels(self.platform, error.type).inc()
                if not error.retriable:
                    self.breaker.record(ok=True)  # the platform answered; the request was at fault
                    raise error
                if isinstance(error, RateLimited) and error.retry_after:
                    self.bucket.hold_off(min(error.retry_after, MAX_RETRY_AFTER))  # slow every caller down
            if status_label in ("timeout", "error"):
                metrics.UPSTREAM_REQUESTS.labels(self.platform, status_label).inc()
                metrics.UPSTREAM_ERRORS.labels(self.platform, error.type).inc()
            delay = self.backoff_delay(attempt, error) if attempt + 1 < attempts else None
            if delay is None:
                if not isinstance(error, RateLimited):
                    self.breaker.record(ok=False)  # one failure per request, after its retries
                raise error
            if delay:
                await anyio.sleep(delay)
        raise AssertionError("unreachable")

    async def throttle(self, method: str, path: str) -> None:
        """Wait for the tokens one attempt spends; a platform with per-endpoint limits adds its own."""
        await self.bucket.take(self.title, self.platform)

    def backoff_delay(self, attempt: int, error: SophiaError) -> float | None:
        """Full-jitter exponential backoff; a Retry-After wins, unless it is too long to wait out."""
        if isinstance(error, RateLimited) and error.retry_after is not None:
            # the bucket holds every caller off for Retry-After (see `request`): no extra sleep here
            return 0.0 if error.retry_after <= MAX_RETRY_AFTER else None
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    def classify(self, response: httpx2.Response) -> SophiaError | None:
        """Map a response to an error, or None when it succeeded. Platforms whose errors hide in
        200 bodies (Slack's `ok: false`, GraphQL `errors`) extend this."""
        status = response.status_code
        if status < 400:
            return None
        detail = self.error_detail(response)
        suffix = f": {detail}" if detail else ""
        if status == 401:
            names = " / ".join(ENV_PREFIX + f.upper() for f in self.credential_fields)
            return UpstreamUnauthorized(
                f"{self.title} rejected the credentials{suffix}. Check {names}.", platform=self.platform
            )
        if status == 403:
            return Forbidden(
                f"{self.title} refused access{suffix}. The token lacks a scope or access to this object.",
                platform=self.platform,
            )
        if status == 404:
            return NotFound(
                f"{self.title} found nothing there{suffix}. Check the id; list tools show valid ids.",
                platform=self.platform,
            )
        if status == 429:
            retry_after = retry_after_seconds(response)
            wait = f" Retry after {retry_after:g} s." if retry_after is not None else " Retry later."
            return RateLimited(f"{self.title} rate limit reached.{wait}", platform=self.platform, retry_after=retry_after)
        if status >= 500:
            return UpstreamUnavailable(
                f"{self.title} answered {status}{suffix}; it is failing on its side. Try again shortly.",
                platform=self.platform,
            )
        return BadInput(f"{self.title} refused the request ({status}){suffix}.", platform=self.platform)

    def error_detail(self, response: httpx2.Response) -> str:
        """The platform's own error message, shortened; never echoes request headers."""
        try:
            body = response.json()
        except ValueError:
            return ""
        return short_error_text(body)

    def parse_json(self, response: httpx2.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise UpstreamUnavailable(
                f"{self.title} sent a response that is not valid JSON; try again shortly.", platform=self.platform
            ) from None

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.parse_json(await self.request("GET", path, params=params))

    async def post_json(self, path: str, body: Any, params: Mapping[str, Any] | None = None) -> Any:
        return self.parse_json(await self.request("POST", path, json_body=body, params=params))

    # -- the operations every platform has ------------------------------------------------------

    async def list_projects(self, status: ProjectStatus | None, limit: int, cursor: str | None) -> ProjectPage:
        raise NotImplementedError

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        raise NotImplementedError

    async def check(self) -> str:
        """A cheap authenticated call that proves the credentials work; returns who we are."""
        raise NotImplementedError


def short_error_text(body: Any, limit: int = 300) -> str:
    """Find a human message in a platform's error body, whatever its shape."""
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "detail", "title", "errors"):
            if body.get(key):
                return short_error_text(body[key], limit)
        return ""
    if isinstance(body, list) and body:
        return short_error_text(body[0], limit)
    text = str(body)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def filter_status(projects: list[Project], status: ProjectStatus | None) -> list[Project]:
    return projects if status is None else [p for p in projects if p.status == status]


class PageGuard:
    """Refuses a pagination cursor that repeats, so a buggy API cannot loop us forever."""

    def __init__(self, platform: str, max_pages: int = 50) -> None:
        self.platform = platform
        self.max_pages = max_pages
        self.seen: set[str] = set()

    def next(self, cursor: str | None) -> bool:
        if not cursor:
            return False
        if cursor in self.seen or len(self.seen) >= self.max_pages:
            raise UpstreamUnavailable(
                f"{self.platform} pagination did not advance (cursor repeated or over {self.max_pages} pages).",
                platform=self.platform,
            )
        self.seen.add(cursor)
        return True
