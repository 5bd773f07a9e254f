"""Role-based permission classes shared by every app."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.authorization import ensure_may_change


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

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False  # 401: who is asking comes first
        if request.method not in SAFE_METHODS:
            ensure_may_change(user)  # 403 permission_denied, saying why
        return True
