from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION wallet_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_logs_append_only
    BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION wallet_refuse_change();
CREATE TRIGGER audit_seals_append_only
    BEFORE UPDATE OR DELETE ON audit_seals
    FOR EACH ROW EXECUTE FUNCTION wallet_refuse_change();
"""

REVERSE = """
DROP TRIGGER IF EXISTS audit_seals_append_only ON audit_seals;
DROP TRIGGER IF EXISTS audit_logs_append_only ON audit_logs;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD, REVERSE)]
