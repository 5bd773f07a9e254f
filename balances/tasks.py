"""The balance cache's periodic warm-up (beat), queued by name."""

from celery import shared_task


@shared_task(name="maintenance.warm_balance_cache", ignore_result=True)
def warm_balance_cache() -> int:
    """Read the recently active accounts' balances into the cache; how many were written."""
    from balances import cache

    return cache.warm_recent()
