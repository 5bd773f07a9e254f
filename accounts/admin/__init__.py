"""The console's user pages, one module per concern; importing them registers them."""

from accounts.admin import tokens, users

__all__ = ["tokens", "users"]
