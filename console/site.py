"""The back-office console at `/admin/`: who may enter, the operations dashboard.

Entry follows the user's role, not Django's permission tables: admins (role `admin` or
superusers) act, auditors read everything, ordinary users cannot enter. Each ModelAdmin
applies the same rule through `console.mixins.RoleAccessMixin`.

This module is loaded while the app registry is being built (it names the admin app in
`INSTALLED_APPS`), so it imports no models at module level.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import PermissionDenied
from django.urls import path, reverse


def is_console_user(user) -> bool:
    """May enter the console: an active admin, superuser or auditor."""
    return bool(user and user.is_authenticated and user.is_active and user.can_read_all)


def is_console_admin(user) -> bool:
    """May act in the console (move money, change states): an active admin or superuser."""
    return bool(user and user.is_authenticated and user.is_active and user.is_admin)


class WalletAdminSite(admin.AdminSite):
    site_header = "Wallet back office"
    site_title = "Wallet back office"
    index_title = "Operations console"
    index_template = "admin/wallet_index.html"

    def __init__(self, name: str = "admin") -> None:
        # The site is built once the app registry is ready (on its first use), so the form's
        # module, which imports models, may be imported here.
        from console.views import ConsoleAuthenticationForm

        super().__init__(name)
        self.login_form = ConsoleAuthenticationForm
        # Deleting ledger rows or users is never a console operation (users are deactivated).
        self.disable_action("delete_selected")

    def has_permission(self, request) -> bool:
        return is_console_user(request.user)

    def each_context(self, request):
        context = super().each_context(request)
        context["console_can_act"] = is_console_admin(request.user)
        return context

    def get_urls(self):
        from console import views

        custom = [
            path(
                "dashboard/",
                self.admin_view(views.DashboardView.as_view(admin_site=self)),
                name="dashboard",
            ),
            path(
                "dashboard/reconcile/",
                self.admin_view(views.RunReconciliationView.as_view(admin_site=self)),
                name="dashboard-reconcile",
            ),
        ]
        return custom + super().get_urls()

    def password_change(self, request, extra_context=None):
        """Django's page, with a form that changes the password through the accounts service.

        Auditors change nothing, their own profile included: an admin resets their password.
        """
        from django.contrib.auth.views import PasswordChangeView

        if not is_console_admin(request.user):
            raise PermissionDenied

        from console.views import ConsolePasswordChangeForm

        request.current_app = self.name
        return PasswordChangeView.as_view(
            form_class=ConsolePasswordChangeForm,
            success_url=reverse("admin:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
        )(request)

    def index(self, request, extra_context=None):
        from console.views import index_summary

        return super().index(request, {**index_summary(), **(extra_context or {})})


class WalletAdminConfig(AdminConfig):
    """`django.contrib.admin` with `WalletAdminSite` as `admin.site`."""

    default_site = "console.site.WalletAdminSite"
