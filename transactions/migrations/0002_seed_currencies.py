from django.db import migrations

from money.currencies import DEFAULT_CURRENCIES, seed_default_currencies


def seed(apps, schema_editor):
    seed_default_currencies(apps.get_model("transactions", "Currency"))


def unseed(apps, schema_editor):
    apps.get_model("transactions", "Currency").objects.filter(
        code__in=[c[0] for c in DEFAULT_CURRENCIES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("transactions", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
