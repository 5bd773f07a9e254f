"""Login throttles: per client address (scope `login`) and per username after failures."""

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from wallet_project.errors import ThrottledError

WINDOW_SECONDS = 60


def _key(username: str) -> str:
    return f"login-failures:{username.strip().lower()}"


def ensure_username_not_locked(*, username: str) -> None:
    """Refuse with 429 once a username collected too many failures in the window."""
    limit = settings.REST_FRAMEWORK["LOGIN_FAILURES_PER_USERNAME"]
    try:
        failures = cache.get(_key(username)) or 0
        ttl = cache.ttl(_key(username)) if failures >= limit else None
    except RedisError:
        return
    if failures >= limit:
        wait = max(int(ttl or WINDOW_SECONDS), 1)
        raise ThrottledError(
            f"Too many failed logins for this username; retry in {wait} seconds.",
            details={"retry_after": wait},
        )


def count_failure(*, username: str) -> None:
    try:
        key = _key(username)
        if cache.add(key, 1, timeout=WINDOW_SECONDS):
            return
        cache.incr(key)
    except (RedisError, ValueError):
        return
