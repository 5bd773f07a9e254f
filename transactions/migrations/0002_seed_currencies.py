from django.db import migrations

CURRENCIES = [
    ("USD", "US Dollar", 2),
    ("EUR", "Euro", 2),
    ("GBP", "Pound Sterling", 2),
    ("JPY", "Yen", 0),
    ("KWD", "Kuwaiti Dinar", 3),
]


def seed(apps, schema_editor):
    currency = apps.get_model("transactions", "Currency")
    for code, name, exponent in CURRENCIES:
        currency.objects.update_or_create(
            code=code, defaults={"name": name, "exponent": exponent, "enabled": True}
        )


def unseed(apps, schema_editor):
    apps.get_model("transactions", "Currency").objects.filter(
        code__in=[c[0] for c in CURRENCIES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("transactions", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
