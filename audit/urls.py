from audit.views import AuditLogViewSet
from wallet_project.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("audit-logs", AuditLogViewSet, basename="audit-log")

urlpatterns = router.urls
