"""The console's transaction pages, one module per sub-domain; importing them registers them."""

from transactions.admin import batches, ledger, limits, schedules

__all__ = ["batches", "ledger", "limits", "schedules"]
