"""OpenAPI pieces shared by every viewset: the error envelope and its responses."""

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorEnvelope = inline_serializer(
    name="ErrorEnvelope",
    fields={
        "error": inline_serializer(
            name="ErrorBody",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(),
                "request_id": serializers.CharField(),
            },
        )
    },
)

_DESCRIPTIONS = {
    400: "validation_error or malformed_json",
    401: "not_authenticated, invalid_token, token_expired or invalid_credentials",
    403: "permission_denied",
    404: "not_found",
    409: "idempotency_key_reused, idempotency_in_progress or conflict",
    413: "payload_too_large",
    422: "insufficient_funds, limit_exceeded, account_inactive, same_account or invalid_state",
    429: "throttled",
}


def ERRORS(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error responses for `extend_schema(responses=...)`, all in the one envelope."""
    return {
        status: OpenApiResponse(response=ErrorEnvelope, description=_DESCRIPTIONS[status])
        for status in statuses
    }


def LIST_ERRORS(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error responses of a cursor-paginated list: `statuses`, and the `404` that answers a
    `cursor` the list did not issue (DRF's CursorPagination raises NotFound for it)."""
    return {
        **ERRORS(*statuses),
        404: OpenApiResponse(
            response=ErrorEnvelope, description="not_found: a `cursor` this list did not issue"
        ),
    }
