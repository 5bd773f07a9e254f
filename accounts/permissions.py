"""Role-based permission classes shared by every app."""

from rest_framework.permissions import BasePermission


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


class IsAuditorOrAdminReadOnly(BasePermission):
    """Auditors read; admins read and write."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return user.can_read_all
        return user.is_admin


class CanMoveMoney(BasePermission):
    """Users and admins act on money; auditors may only read (GET, HEAD, OPTIONS)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return request.method in ("GET", "HEAD", "OPTIONS") or not user.is_auditor
