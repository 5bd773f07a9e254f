from wallet_project.routers import OptionalSlashRouter

from balances.views import BalanceViewSet

router = OptionalSlashRouter()
router.register("balances", BalanceViewSet, basename="balance")

urlpatterns = router.urls
