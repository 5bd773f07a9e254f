"""`Currency` now lives in `money` (see `money.0001_initial`): the currency foreign keys point
there, and the model leaves this app's state. State only: the `currencies` table, its rows,
the columns and their constraints are unchanged."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("transactions", "0007_limit_messages"),
        ("money", "0001_initial"),
        # Every foreign key to the model points at money.Currency before it leaves.
        ("balances", "0005_currency_in_money"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="scheduledtransfer",
                    name="currency",
                    field=models.ForeignKey(db_column="currency", on_delete=django.db.models.deletion.PROTECT, related_name="+", to="money.currency"),
                ),
                migrations.AlterField(
                    model_name="transferlimit",
                    name="currency",
                    field=models.ForeignKey(db_column="currency", on_delete=django.db.models.deletion.PROTECT, related_name="+", to="money.currency"),
                ),
                migrations.AlterField(
                    model_name="transaction",
                    name="currency",
                    field=models.ForeignKey(db_column="currency", db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="money.currency"),
                ),
                migrations.DeleteModel(
                    name="Currency",
                ),
            ],
            database_operations=[],
        ),
    ]
