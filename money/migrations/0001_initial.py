"""`Currency` moves here from `transactions`, in the state only: the `currencies` table (created
by `transactions.0001_initial`, seeded by `transactions.0002_seed_currencies`) and its rows
stay as they are. `transactions.0008` and `balances.0005` then point their foreign keys here,
and `transactions.0008` removes the model from its own state."""

from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("transactions", "0002_seed_currencies"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Currency",
                    fields=[
                        ("code", models.CharField(max_length=3, primary_key=True, serialize=False)),
                        ("name", models.CharField(max_length=64)),
                        ("exponent", models.PositiveSmallIntegerField()),
                        ("enabled", models.BooleanField(default=True)),
                    ],
                    options={
                        "verbose_name_plural": "currencies",
                        "db_table": "currencies",
                        "ordering": ("code",),
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("exponent__lte", 3)),
                                name="currency_exponent_at_most_3",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
