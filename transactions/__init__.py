"""Money movement, the top of the core: movements, idempotency, limits, batches, schedules.
Its services call balances, accounts and audit. Its tasks, like its views, are interfaces
that call the services; the services queue them by name (`wallet_project.celery.enqueue`)."""
