"""The audit stream for admins and auditors."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets

from accounts.permissions import IsAuditorOrAdmin
from audit import selectors
from audit.models import AuditLog
from audit.serializers import AuditLogFilterSerializer, AuditLogSerializer
from wallet_project.schema import ERRORS, LIST_ERRORS


class AuditLogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Audit events, newest first (admins and auditors)."""

    serializer_class = AuditLogSerializer
    permission_classes = (IsAuditorOrAdmin,)
    queryset = AuditLog.objects.none()

    def get_queryset(self):
        filters = AuditLogFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        data = dict(filters.validated_data)
        return selectors.list_audit_logs(
            start=data.pop("from", None), end=data.pop("to", None), **data
        )

    def get_object(self) -> AuditLog:
        return selectors.get_audit_log(log_id=self.kwargs["pk"])

    @extend_schema(
        parameters=[AuditLogFilterSerializer],
        responses={200: AuditLogSerializer(many=True), **LIST_ERRORS(400, 401, 403)},
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: AuditLogSerializer, **ERRORS(401, 403, 404)})
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)
