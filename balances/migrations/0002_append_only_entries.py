from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION wallet_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER balance_entries_append_only
    BEFORE UPDATE OR DELETE ON balance_entries
    FOR EACH ROW EXECUTE FUNCTION wallet_refuse_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS balance_entries_append_only ON balance_entries;
"""


class Migration(migrations.Migration):
    dependencies = [("balances", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD, REVERSE)]
