"""The currencies enabled by default (ISO 4217 code, name, minor-unit exponent)."""

DEFAULT_CURRENCIES = (
    ("USD", "US Dollar", 2),
    ("EUR", "Euro", 2),
    ("GBP", "Pound Sterling", 2),
    ("JPY", "Yen", 0),
    ("KWD", "Kuwaiti Dinar", 3),
)


def seed_default_currencies(currency_model) -> None:
    """Create or enable the default currencies (a data migration and test fixtures use this)."""
    for code, name, exponent in DEFAULT_CURRENCIES:
        currency_model.objects.update_or_create(
            code=code, defaults={"name": name, "exponent": exponent, "enabled": True}
        )
