"""The error table of docs/api.md as classes: every refusal the API can give."""

from typing import Any


class WalletError(Exception):
    """Base of every domain error: a stable code, an HTTP status, a message, details."""

    code = "internal_error"
    http_status = 500
    message = "An internal error occurred."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.message
        self.details = details or {}
        super().__init__(self.message)


class ValidationFailedError(WalletError):
    code = "validation_error"
    http_status = 400
    message = "The request is not valid."


class MalformedJsonError(WalletError):
    code = "malformed_json"
    http_status = 400
    message = "The request body is not valid JSON."


class NotAuthenticatedError(WalletError):
    code = "not_authenticated"
    http_status = 401
    message = "Authentication credentials were not provided."


class InvalidTokenError(WalletError):
    code = "invalid_token"
    http_status = 401
    message = "The token is invalid."


class TokenExpiredError(WalletError):
    code = "token_expired"
    http_status = 401
    message = "The token has expired."


class InvalidCredentialsError(WalletError):
    code = "invalid_credentials"
    http_status = 401
    message = "Invalid username or password."


class PermissionDeniedError(WalletError):
    code = "permission_denied"
    http_status = 403
    message = "You do not have permission to perform this action."


class NotFoundError(WalletError):
    code = "not_found"
    http_status = 404
    message = "Not found."


class MethodNotAllowedError(WalletError):
    code = "method_not_allowed"
    http_status = 405
    message = "Method not allowed."


class UnsupportedMediaTypeError(WalletError):
    code = "unsupported_media_type"
    http_status = 415
    message = "Unsupported media type; send application/json."


class PayloadTooLargeError(WalletError):
    code = "payload_too_large"
    http_status = 413
    message = "The request body is larger than 1 MiB."


class ConflictError(WalletError):
    code = "conflict"
    http_status = 409
    message = "The request conflicts with the current state."


class IdempotencyKeyReusedError(ConflictError):
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was used with a different request."


class IdempotencyInProgressError(ConflictError):
    code = "idempotency_in_progress"
    message = "A request with this Idempotency-Key is still being processed."


class BusinessRuleError(WalletError):
    code = "business_rule"
    http_status = 422
    message = "The request breaks a business rule."


class InsufficientFundsError(BusinessRuleError):
    code = "insufficient_funds"
    message = "The balance is too low for this operation."


class LimitExceededError(BusinessRuleError):
    code = "limit_exceeded"
    message = "A limit refuses this operation."


class AccountInactiveError(BusinessRuleError):
    code = "account_inactive"
    message = "An account taking part in this operation is inactive."


class SameAccountError(BusinessRuleError):
    code = "same_account"
    message = "Sender and recipient must be different accounts."


class InvalidStateError(BusinessRuleError):
    code = "invalid_state"
    message = "This state transition is not allowed."


class ThrottledError(WalletError):
    code = "throttled"
    http_status = 429
    message = "Too many requests."


class ServiceUnavailableError(WalletError):
    """A dependency is down or overloaded; answered with `Retry-After` (seconds)."""

    code = "service_unavailable"
    http_status = 503
    message = "The service is temporarily unavailable; retry later."
    retry_after = 2


class DatabaseUnavailableError(ServiceUnavailableError):
    """The database refused or lost the connection (a restart, a failover, an overload).

    Nothing was decided: the request either never ran or was rolled back, except for a
    connection lost during COMMIT, whose outcome only a retry under the same
    `Idempotency-Key` can tell (it replays the result, or runs the request once).
    """

    message = "The database is unavailable; retry with the same Idempotency-Key."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        super().__init__(message, details={"retryable": True, **(details or {})})


class ReadTimeoutError(DatabaseUnavailableError):
    """PostgreSQL stopped a statement at its time limit (SQLSTATE 57014): an API read ran
    past `API_READ_TIMEOUT_MS`. The statement is cancelled on the server, which is free
    again; nothing was changed."""

    message = (
        "The read took longer than the database allows and was stopped; retry later, or "
        "narrow it (a shorter range, a smaller page)."
    )
