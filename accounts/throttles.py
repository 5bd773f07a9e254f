"""Request throttles that survive a Redis outage, and the per-username login failure limit.

The DRF throttles keep their counters in the cache (Redis). Throttling protects the service;
it must not take it down: when Redis is unreachable they let the request through (and say so
in the log) instead of answering 500, like every other use of Redis.
"""

import logging
import os

from django.conf import settings
from django.core.cache import cache
from django_redis import get_redis_connection
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework import throttling

from wallet_project.errors import ThrottledError
from wallet_project.redis_scripts import run_script

logger = logging.getLogger("wallet.throttles")

CACHE_ERRORS = (ConnectionInterrupted, RedisError, ConnectionError, TimeoutError)
WINDOW_SECONDS = 60


# KEYS[1]: the log (a sorted set of request times). ARGV: now, start of the window,
# the limit, this request's member, the key's lifetime in seconds. Returns whether the
# request is allowed and the time of the oldest request in the window (after this one).
_SLIDING_LOG = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < tonumber(ARGV[3]) then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
    redis.call('EXPIRE', KEYS[1], ARGV[5])
    allowed = 1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
return {allowed, oldest or ARGV[1]}
"""


class _SlidingLog:
    """DRF's rate throttles (the same sliding window), kept in Redis in one round trip.

    DRF keeps a request history as a cached list that it reads and writes back whole on
    every request: two round trips, and a list as long as the rate. Here the history is
    a sorted set scored by time, and one script drops what left the window, counts what
    is left, and adds this request if it is allowed (DRF never records a refused one).
    Fails open: a Redis outage lets requests through.
    """

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        try:
            return self._allow(cache.make_key(self.key))
        except CACHE_ERRORS:
            logger.warning("throttle cache unavailable; request let through", exc_info=True)
            return True

    def _allow(self, key: str) -> bool:
        self.now = self.timer()
        member = f"{self.now:.6f}:{os.urandom(6).hex()}"
        allowed, oldest = run_script(
            get_redis_connection("default"),
            _SLIDING_LOG,
            keys=[key],
            args=[
                repr(self.now),
                repr(self.now - self.duration),
                self.num_requests,
                member,
                int(self.duration) + 1,
            ],
        )
        self.oldest = float(oldest)
        return allowed == 1

    def wait(self) -> float:
        """Seconds until the oldest request in the window leaves it (for `Retry-After`)."""
        return max(self.oldest + self.duration - self.now, 0.0)


class AnonRateThrottle(_SlidingLog, throttling.AnonRateThrottle):
    """Anonymous requests per client address (scope `anon`)."""


class UserRateThrottle(_SlidingLog, throttling.UserRateThrottle):
    """Authenticated requests per user (scope `user`)."""


class ScopedRateThrottle(_SlidingLog, throttling.ScopedRateThrottle):
    """Named scopes (`login`, `register`) per user or client address."""

    def allow_request(self, request, view) -> bool:
        # DRF's scope set-up (its own allow_request would then count in the cached list).
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)


def failure_key(*, login: str, user_id: int | None) -> str:
    """One counter per account, whether it is named by username or by email."""
    if user_id is not None:
        return f"login-failures:user:{user_id}"
    return f"login-failures:name:{login.strip().lower()}"


def ensure_login_not_locked(*, key: str) -> None:
    """Refuse with 429 once an account collected too many failures in the window."""
    limit = settings.REST_FRAMEWORK["LOGIN_FAILURES_PER_USERNAME"]
    try:
        failures = cache.get(key) or 0
        ttl = cache.ttl(key) if failures >= limit else None
    except CACHE_ERRORS:
        logger.warning("login failure counter unavailable", exc_info=True)
        return
    if failures >= limit:
        wait = max(int(ttl or WINDOW_SECONDS), 1)
        raise ThrottledError(
            f"Too many failed logins for this account; retry in {wait} seconds.",
            details={"retry_after": wait},
        )


def count_failure(*, key: str) -> None:
    """Add one failure; the window starts at the first failure and is not extended."""
    try:
        if cache.add(key, 1, timeout=WINDOW_SECONDS):
            return
        try:
            cache.incr(key)
        except ValueError:  # the key expired between add and incr: start a new window
            cache.add(key, 1, timeout=WINDOW_SECONDS)
    except CACHE_ERRORS:
        logger.warning("login failure counter unavailable", exc_info=True)


def clear_failures(*, key: str) -> None:
    """A successful login starts the account's count again."""
    try:
        cache.delete(key)
    except CACHE_ERRORS:
        logger.warning("login failure counter unavailable", exc_info=True)
