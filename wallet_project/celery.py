"""The Celery app: the worker pool for async, batch and scheduled work.

Queues: `transactions` (async movements, batches), `scheduled` (the scheduler and its
runs), `maintenance` (expiry, stale-work sweeps, counters, sealing, reconciliation); the
queues (`task_queues`), routes and the beat schedule are in the Celery section of the
settings. `celery -A wallet_project worker` consumes every queue; `-Q` picks some, for
operators who split the work between workers. Run one `celery -A wallet_project beat`.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallet_project.settings")

app = Celery("wallet_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def enqueue(name: str, **kwargs) -> None:
    """Queue the registered task `name` with keyword arguments (its `delay`).

    Services queue work by the task's name, the message's stable contract: the task modules
    are interfaces that call the services, so the services never import them. Each app
    registers its tasks when it is ready (see `transactions.apps`).
    """
    app.tasks[name].delay(**kwargs)
