"""JWT bookkeeping tables, read-only; the token itself is never shown."""

from django.contrib import admin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from console.mixins import LargeTableMixin, ReadOnlyAdminMixin

admin.site.unregister(OutstandingToken)
admin.site.unregister(BlacklistedToken)


@admin.register(OutstandingToken)
class OutstandingTokenAdmin(ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin):
    list_display = ("jti", "user", "created_at", "expires_at")
    list_select_related = ("user",)
    search_fields = ("=jti", "=user__username")
    date_hierarchy = "created_at"
    list_filter = ("expires_at",)
    ordering = ("-id",)
    fields = ("jti", "user", "created_at", "expires_at")


@admin.register(BlacklistedToken)
class BlacklistedTokenAdmin(ReadOnlyAdminMixin, LargeTableMixin, admin.ModelAdmin):
    list_display = ("token_jti", "token_user", "blacklisted_at")
    list_select_related = ("token__user",)
    search_fields = ("=token__jti", "=token__user__username")
    date_hierarchy = "blacklisted_at"
    list_filter = ("blacklisted_at",)
    ordering = ("-id",)
    fields = ("token", "blacklisted_at")

    @admin.display(description="jti")
    def token_jti(self, obj: BlacklistedToken) -> str:
        return obj.token.jti

    @admin.display(description="user")
    def token_user(self, obj: BlacklistedToken):
        return obj.token.user
