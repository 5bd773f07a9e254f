"""Role-based permission classes shared by every app."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.authorization import READ_ONLY_MESSAGE


class IsAdmin(BasePermission):
    """Only admins (role `admin` or superuser)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_admin)


class IsAuditorOrAdmin(BasePermission):
    """Admins and auditors: read everything."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.can_read_all)


class AuditorsReadOnly(BasePermission):
    """The default of every API view: signed in; auditors may only read (GET, HEAD, OPTIONS).

    A view that allows less names its own classes; the services refuse an auditor's write
    too (`accounts.authorization.ensure_may_change`), whatever the caller.
    """

    message = READ_ONLY_MESSAGE

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or not user.is_auditor
