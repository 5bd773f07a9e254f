"""Maintenance tasks of accounts."""

from celery import shared_task
from django.db import OperationalError


@shared_task(
    name="maintenance.flush_expired_tokens",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def flush_expired_tokens() -> None:
    """Delete expired refresh tokens and their blacklist entries. Safe to run twice."""
    from django.core.management import call_command

    call_command("flushexpiredtokens")
