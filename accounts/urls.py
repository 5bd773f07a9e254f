from wallet_project.routers import OptionalSlashRouter

from accounts.views import AuthViewSet, UserViewSet

router = OptionalSlashRouter()
router.register("auth", AuthViewSet, basename="auth")
router.register("users", UserViewSet, basename="user")

urlpatterns = router.urls
