from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from audit.selectors import latest_reconciliation_summary
from transactions.selectors import stalled_background_work
from wallet_project import envelope, health

# What readiness reports of the domain, read by the apps (health imports none of them).
readiness = {"background": stalled_background_work, "reconciliation": latest_reconciliation_summary}

# Money movement first: URLs are matched in order, and it is the busiest path.
api_v1 = [
    path("", include("transactions.urls")),
    path("", include("accounts.urls")),
    path("", include("balances.urls")),
    path("", include("audit.urls")),
]

urlpatterns = [
    re_path(r"^health/live/?$", health.live, name="health-live"),
    re_path(r"^health/ready/?$", health.ready, readiness, name="health-ready"),
    re_path(r"^metrics/?$", health.metrics, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    re_path(r"^(?!admin/).*$", envelope.not_found),
]

handler400 = "wallet_project.envelope.bad_request"
handler403 = "wallet_project.envelope.permission_denied"
handler404 = "wallet_project.envelope.not_found"
handler500 = "wallet_project.envelope.server_error"
