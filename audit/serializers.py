from rest_framework import serializers

from audit.models import AuditLog


class AuditLogSerializer(serializers.ModelSerializer):
    actor_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = AuditLog
        fields = (
            "id",
            "entity_type",
            "entity_id",
            "action",
            "details",
            "actor_id",
            "request_id",
            "created_at",
            "hash",
        )
        read_only_fields = fields


class AuditLogFilterSerializer(serializers.Serializer):
    entity_type = serializers.CharField(required=False, max_length=32)
    entity_id = serializers.CharField(required=False, max_length=64)
    action = serializers.CharField(required=False, max_length=64)
    actor = serializers.IntegerField(required=False, min_value=1)
    to = serializers.DateTimeField(required=False)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(required=False)
        return fields
