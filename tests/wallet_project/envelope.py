"""Assertions on the docs/api.md error envelope, shared by the test modules."""

ENVELOPE_KEYS = {"code", "message", "details", "request_id"}


def assert_error(response, status: int, code: str) -> dict:
    """The response is `status` with the one error envelope carrying `code`; returns `error`."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == ENVELOPE_KEYS, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], dict)
    assert error["request_id"] == response["X-Request-ID"]
    return error
