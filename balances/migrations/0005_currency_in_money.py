"""The currency foreign keys point at `money.Currency` (the model moved, its table did not):
state only, the columns and their constraints are unchanged."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("balances", "0004_opened_events_for_unmoved_balances"),
        ("money", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="balance",
                    name="currency",
                    field=models.ForeignKey(db_column="currency", on_delete=django.db.models.deletion.PROTECT, related_name="+", to="money.currency"),
                ),
                migrations.AlterField(
                    model_name="balanceentry",
                    name="currency",
                    field=models.ForeignKey(db_column="currency", db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name="+", to="money.currency"),
                ),
            ],
            database_operations=[],
        ),
    ]
