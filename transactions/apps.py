from django.apps import AppConfig


class TransactionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "transactions"

    def ready(self) -> None:
        # The tasks register themselves: the services queue them by name.
        from balances import cache
        from transactions import services, stats, tasks  # noqa: F401

        services.on_movements_committed(stats.record_committed)
        services.on_movements_committed(cache.invalidate_for_transactions)
