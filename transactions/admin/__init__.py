"""The console's transaction pages, one module per sub-domain; importing them registers them."""

from transactions.admin import batches, ledger, schedules

__all__ = ["batches", "ledger", "schedules"]
