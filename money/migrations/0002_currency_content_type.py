"""The content type of `Currency` follows the model: `transactions.currency` becomes
`money.currency`, so its permissions and admin log entries stay attached to it. A database
created after the move has no such row (content types are created after migrating)."""

from django.db import migrations


def _relabel(apps, *, old: str, new: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    if ContentType.objects.filter(app_label=new, model="currency").exists():
        return
    ContentType.objects.filter(app_label=old, model="currency").update(app_label=new)


def to_money(apps, schema_editor):
    _relabel(apps, old="transactions", new="money")


def to_transactions(apps, schema_editor):
    _relabel(apps, old="money", new="transactions")


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("money", "0001_initial"),
    ]

    operations = [migrations.RunPython(to_money, to_transactions)]
