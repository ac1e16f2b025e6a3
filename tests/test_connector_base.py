"""The mechanisms every connector shares: token bucket, circuit breaker, Retry-After, cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx2
import pytest

from connectors.base import CircuitBreaker, RateSpec, TokenBucket, decode_cursor, encode_cursor, retry_after_seconds
from sophia_mcp.errors import BadInput, CircuitOpen


def test_a_retry_after_holds_every_caller_off_and_a_refused_call_costs_no_token() -> None:
    bucket = TokenBucket(RateSpec(per_second=10, burst=5))
    bucket.hold_off(3.0)
    assert bucket.delay_for_one() == pytest.approx(3.0, abs=0.05)
    assert bucket.delay_for_one() == pytest.approx(3.1, abs=0.05)  # the next caller queues behind it
    before = bucket.tokens
    bucket.delay_for_one()
    bucket.give_back()
    assert bucket.tokens == pytest.approx(before, abs=0.01)


def test_half_open_circuit_lets_one_trial_through() -> None:
    breaker = CircuitBreaker("linear", threshold=2, cooldown=0.0, trial_window=60)
    breaker.record(ok=False)
    breaker.check()  # still closed after one failure
    breaker.record(ok=False)
    breaker.check()  # cooldown 0: half-open, this caller is the trial
    with pytest.raises(CircuitOpen, match="paused"):
        breaker.check()  # everyone else waits for it
    breaker.record(ok=True)
    breaker.check()
    assert breaker.state == "closed"


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(httpx2.Response(429, headers={"Retry-After": soon})) == pytest.approx(30, abs=2)
    assert retry_after_seconds(httpx2.Response(429, headers={"Retry-After": "7"})) == 7
    assert retry_after_seconds(httpx2.Response(429, headers={"Retry-After": "soonish"})) is None


def test_cursors_round_trip_and_refuse_garbage_or_another_platform() -> None:
    cursor = encode_cursor("linear", {"after": "abc"})
    assert decode_cursor("linear", cursor) == {"after": "abc"}
    for bad in ("not-a-cursor", encode_cursor("github", {"page": 2})):
        with pytest.raises(BadInput, match="next_cursor"):
            decode_cursor("linear", bad)


@pytest.mark.anyio
async def test_upstream_errors_are_counted_by_type_whatever_status_carried_them() -> None:
    """Slack says a token is bad in a 200 and Linear in a 400: the credentials alert counts error types."""
    from connectors.linear import LinearConnector
    from connectors.slack import SlackConnector
    from sophia_mcp import metrics
    from sophia_mcp.config import Settings
    from sophia_mcp.errors import UpstreamUnauthorized

    def count(platform: str) -> float:
        labels = {"platform": platform, "type": "upstream-unauthorized"}
        return metrics.REGISTRY.get_sample_value("sophia_upstream_errors_total", labels) or 0.0

    settings = Settings(_env_file=None, slack_bot_token="xoxb-1-x", linear_api_key="lin_api_x")  # type: ignore[call-arg]
    slack = SlackConnector(settings, httpx2.MockTransport(lambda r: httpx2.Response(200, json={"ok": False, "error": "invalid_auth"})))
    linear_answer = {"errors": [{"message": "Authentication required", "extensions": {"code": "AUTHENTICATION_ERROR"}}]}
    linear = LinearConnector(settings, httpx2.MockTransport(lambda r: httpx2.Response(400, json=linear_answer)))
    before = count("slack"), count("linear")
    with pytest.raises(UpstreamUnauthorized):
        await slack.check()
    with pytest.raises(UpstreamUnauthorized):
        await linear.check()
    assert (count("slack"), count("linear")) == (before[0] + 1, before[1] + 1)
    await slack.aclose()
    await linear.aclose()
