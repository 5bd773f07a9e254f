"""The serializer fields of money: a currency code and an amount, parsed against each other."""

from typing import TYPE_CHECKING, Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from money.amounts import currency_info, lookup_currency, parse_amount
from wallet_project.errors import ValidationFailedError


class CurrencyField(serializers.CharField):
    """An enabled ISO 4217 code; omitted means the configured default currency."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 3)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("A currency code is required.")
        info = lookup_currency(data)
        if info is None or not info.enabled:
            raise serializers.ValidationError(f"'{data}' is not a supported currency.")
        return data


@extend_schema_field({"type": "string", "format": "decimal", "example": "10.50"})
class AmountField(serializers.Field):
    """A money amount: parsed strictly against the sibling `currency` field, rendered as a string.

    For input it keeps the raw value; `validate()` of the serializer calls `parse_amount` with
    the currency once both are known (see `MoneyInputMixin`).
    """

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return str(value)


if TYPE_CHECKING:
    _Serializer = serializers.Serializer[Any]  # what the mixin is mixed into
else:
    _Serializer = object


class MoneyInputMixin(_Serializer):
    """Serializer mixin: resolve `currency` (default) and parse `amount` against it."""

    def validate(self, attrs):
        attrs = super().validate(attrs)
        code = attrs.get("currency") or settings.DEFAULT_CURRENCY
        try:
            currency_info(code)
        except ValidationFailedError as exc:
            raise serializers.ValidationError(exc.details) from exc
        attrs["currency"] = code
        if "amount" in attrs:
            try:
                attrs["amount"] = parse_amount(attrs["amount"], code)
            except ValueError as exc:
                raise serializers.ValidationError({"amount": [str(exc)]}) from exc
        return attrs
