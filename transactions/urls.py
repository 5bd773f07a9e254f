from django.urls import re_path

from transactions.views import (
    BatchViewSet,
    ScheduledTransferViewSet,
    StatsView,
    TransactionViewSet,
)
from wallet_project.routers import OptionalSlashRouter

router = OptionalSlashRouter()
# Before `transactions`, whose `transactions/{id}` route would otherwise take these paths.
router.register("transactions/batch", BatchViewSet, basename="transaction-batch")
router.register("transactions/scheduled", ScheduledTransferViewSet, basename="scheduled-transfer")
router.register("transactions", TransactionViewSet, basename="transaction")

urlpatterns = [
    re_path(r"^stats/?$", StatsView.as_view(), name="stats"),
    *router.urls,
]
