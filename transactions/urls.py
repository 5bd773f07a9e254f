from wallet_project.routers import OptionalSlashRouter

from transactions.views import TransactionViewSet

router = OptionalSlashRouter()
router.register("transactions", TransactionViewSet, basename="transaction")

urlpatterns = router.urls
