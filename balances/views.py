"""Balance reads: current, historical, at a point in time."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from balances import cache, selectors
from balances.serializers import (
    AtTimeQuerySerializer,
    AtTimeSerializer,
    BalanceItemSerializer,
    BalanceQuerySerializer,
    CurrentBalancesSerializer,
    HistoricalQuerySerializer,
    HistoryPointSerializer,
)
from money.amounts import format_amount
from transactions.selectors import resolve_subject_user_id
from wallet_project.schema import ERRORS, LIST_ERRORS


class HistoryPagination(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    ordering = ("created_at", "id")


class BalanceViewSet(viewsets.ViewSet):
    """The caller's balances; admins and auditors may name any `user_id`."""

    # Only `historical` is a list: it pages with this class, and the schema reads it from here.
    pagination_class = HistoryPagination

    @extend_schema(
        parameters=[BalanceQuerySerializer],
        responses={200: CurrentBalancesSerializer, **ERRORS(400, 401, 403)},
    )
    @action(detail=False, methods=["get"])
    def current(self, request: Request) -> Response:
        query = BalanceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        user_id = resolve_subject_user_id(
            viewer=request.user, requested=query.validated_data.get("user_id")
        )
        # From the balance cache (Redis) when it holds them; PostgreSQL otherwise.
        balances = cache.current_balances(
            user_id=user_id, currency=query.validated_data.get("currency")
        )
        return Response(
            {"user_id": user_id, "balances": BalanceItemSerializer(balances, many=True).data}
        )

    @extend_schema(
        parameters=[HistoricalQuerySerializer],
        responses={200: HistoryPointSerializer(many=True), **LIST_ERRORS(400, 401, 403)},
    )
    @action(detail=False, methods=["get"])
    def historical(self, request: Request) -> Response:
        query = HistoricalQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        user_id = resolve_subject_user_id(viewer=request.user, requested=data.get("user_id"))
        entries = selectors.list_balance_history(
            user_id=user_id,
            currency=data.get("currency"),
            start=data.get("from"),
            end=data.get("to"),
            interval=data.get("interval"),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(HistoryPointSerializer(page, many=True).data)

    @extend_schema(
        parameters=[AtTimeQuerySerializer],
        responses={200: AtTimeSerializer, **ERRORS(400, 401, 403)},
        operation_id="balances_at_time",
    )
    @action(detail=False, methods=["get"], url_path="at-time")
    def at_time(self, request: Request) -> Response:
        query = AtTimeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        user_id = resolve_subject_user_id(viewer=request.user, requested=data.get("user_id"))
        currency = data.get("currency") or settings.DEFAULT_CURRENCY
        amount = selectors.balance_at(user_id=user_id, currency=currency, at=data["timestamp"])
        return Response(
            {
                "user_id": user_id,
                "currency": currency,
                "amount": format_amount(amount, currency),
                "as_of": data["timestamp"].isoformat().replace("+00:00", "Z"),
            }
        )
