"""Per-request context (request id, user id) carried by a context variable, for logs and errors."""

import contextvars
import re
import uuid

REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
user_id_var: contextvars.ContextVar[int | None] = contextvars.ContextVar("user_id", default=None)
client_ip_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "client_ip", default=None
)


def accept_or_new_request_id(incoming: str | None) -> str:
    """Echo a well-formed incoming id (1-128 chars of [A-Za-z0-9._-]); otherwise make a new one."""
    if incoming and REQUEST_ID_PATTERN.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return request_id_var.get()
