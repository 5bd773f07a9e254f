"""Currencies: the one table of money.

Tables
- `currencies`: ISO 4217 code (the primary key every amount's `currency` column points at),
  name, minor-unit exponent (at most 3, `currency_exponent_at_most_3`), enabled flag. Seeded
  with `money.currencies.DEFAULT_CURRENCIES`; read through the cache of `money.amounts`.

This app imports none of the project's apps: every app may use it.
"""

from django.db import models


class Currency(models.Model):
    code = models.CharField(max_length=3, primary_key=True)
    name = models.CharField(max_length=64)
    exponent = models.PositiveSmallIntegerField()
    enabled = models.BooleanField(default=True)

    class Meta:
        db_table = "currencies"
        ordering = ("code",)
        verbose_name_plural = "currencies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(exponent__lte=3), name="currency_exponent_at_most_3"
            ),
        ]

    def __str__(self) -> str:
        return self.code
