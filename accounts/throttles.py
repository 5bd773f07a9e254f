"""Request throttles that survive a Redis outage, and the per-username login failure limit.

The DRF throttles keep their counters in the cache (Redis). Throttling protects the service;
it must not take it down: when Redis is unreachable they let the request through (and say so
in the log) instead of answering 500, as DESIGN.md asks of every Redis use.
"""

import logging

from django.conf import settings
from django.core.cache import cache
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError
from rest_framework import throttling

from wallet_project.errors import ThrottledError

logger = logging.getLogger("wallet.throttles")

CACHE_ERRORS = (ConnectionInterrupted, RedisError, ConnectionError, TimeoutError)
WINDOW_SECONDS = 60


class _FailOpen:
    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except CACHE_ERRORS:
            logger.warning("throttle cache unavailable; request let through", exc_info=True)
            return True


class AnonRateThrottle(_FailOpen, throttling.AnonRateThrottle):
    """Anonymous requests per client address (scope `anon`)."""


class UserRateThrottle(_FailOpen, throttling.UserRateThrottle):
    """Authenticated requests per user (scope `user`)."""


class ScopedRateThrottle(_FailOpen, throttling.ScopedRateThrottle):
    """Named scopes (`login`, `register`) per user or client address."""


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
