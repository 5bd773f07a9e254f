"""Run jobs in threads released together by a barrier, each on its own database connection."""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Sum

from balances.models import Balance


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None


def run_concurrently(jobs: list[Callable[[], Any]], *, timeout: float = 60.0) -> list[Outcome]:
    """Start every job at once (behind a barrier) and return their outcomes in order.

    Each thread closes its own connection at the end, so the test leaves no session behind.
    """
    barrier = threading.Barrier(len(jobs))
    outcomes = [Outcome() for _ in jobs]

    def work(index: int, job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=timeout)
            outcomes[index].value = job()
        except BaseException as exc:  # reported to the test, which decides what is allowed
            outcomes[index].error = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, args=(i, job), name=f"job-{i}") for i, job in enumerate(jobs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads still running after {timeout}s (deadlock?): {stuck}"
    return outcomes


def total_held(currency: str = "USD") -> Decimal:
    return Balance.objects.filter(currency_id=currency).aggregate(s=Sum("amount"))["s"] or Decimal(
        0
    )


def amounts(users, currency: str = "USD") -> dict[int, Decimal]:
    return dict(
        Balance.objects.filter(user__in=users, currency_id=currency).values_list(
            "user_id", "amount"
        )
    )
