from accounts.views import AuthViewSet, UserViewSet
from wallet_project.routers import OptionalSlashRouter

router = OptionalSlashRouter()
router.register("auth", AuthViewSet, basename="auth")
router.register("users", UserViewSet, basename="user")

urlpatterns = router.urls
