from transactions.views import TransactionViewSet
from wallet_project.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("transactions", TransactionViewSet, basename="transaction")

urlpatterns = router.urls
