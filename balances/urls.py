from balances.views import BalanceViewSet
from wallet_project.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("balances", BalanceViewSet, basename="balance")

urlpatterns = router.urls
