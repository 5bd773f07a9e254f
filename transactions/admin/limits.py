"""Transfer limits: admins set and change them (with a reason, audited); auditors read them."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse

from console.mixins import RoleAccessMixin
from console.views import money_cell, user_link
from transactions import services
from transactions.models import TransferLimit
from wallet_project.errors import WalletError


class TransferLimitForm(forms.ModelForm):
    change_reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why this rule is set or changed; kept in the audit log.",
    )

    class Meta:
        model = TransferLimit
        fields = ("currency", "user", "max_per_transaction", "max_per_day", "is_active")

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                services.check_limit(self.instance_with(data))
            except WalletError as refusal:
                problems = [
                    m
                    for msgs in (refusal.details or {}).values()
                    if isinstance(msgs, list)
                    for m in msgs
                ]
                raise ValidationError(problems or refusal.message) from refusal
        return data

    def instance_with(self, data: dict) -> TransferLimit:
        limit = TransferLimit(pk=self.instance.pk)
        for field in self.Meta.fields:
            setattr(limit, field, data.get(field))
        return limit


def _cap_cell(cap, currency: str) -> str:
    return "-" if cap is None else money_cell(cap, currency)


@admin.register(TransferLimit)
class TransferLimitAdmin(RoleAccessMixin, admin.ModelAdmin):
    form = TransferLimitForm
    list_display = ("currency", "account", "per_transaction", "per_day", "is_active", "updated_at")
    list_filter = ("currency", "is_active")
    raw_id_fields = ("user",)
    readonly_fields = ("reason", "updated_by", "created_at", "updated_at")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a rule is switched off (is_active), so its history stays

    @admin.display(description="account")
    def account(self, obj: TransferLimit) -> str:
        return user_link(obj.user) if obj.user_id else "everyone (default)"

    @admin.display(description="max per movement")
    def per_transaction(self, obj: TransferLimit) -> str:
        return _cap_cell(obj.max_per_transaction, obj.currency_id)

    @admin.display(description="max per day")
    def per_day(self, obj: TransferLimit) -> str:
        return _cap_cell(obj.max_per_day, obj.currency_id)

    def save_model(self, request, obj, form, change) -> None:
        services.save_limit(
            actor=request.user, limit=obj, reason=form.cleaned_data["change_reason"]
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except WalletError as refusal:  # e.g. another admin saved a clashing rule meanwhile
            self.message_user(request, refusal.message, level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:transactions_transferlimit_changelist"))
