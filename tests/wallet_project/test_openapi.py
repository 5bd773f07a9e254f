"""GET /api/schema/ is a valid OpenAPI 3 document of the auth and users endpoints; /api/docs/ is Swagger UI."""

import pytest
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db

AUTH_AND_USERS = {
    "/api/v1/auth/register/": {"post"},
    "/api/v1/auth/login/": {"post"},
    "/api/v1/auth/refresh/": {"post"},
    "/api/v1/auth/logout/": {"post"},
    "/api/v1/auth/me/": {"get"},
    "/api/v1/users/": {"get"},
    "/api/v1/users/{id}/": {"get", "put", "patch", "delete"},
}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return response.json()


def test_the_schema_is_a_valid_openapi_3_document(schema):
    # when / then: jsonschema raises on the first violation
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Wallet API"


def test_the_schema_lists_every_auth_and_users_endpoint(schema):
    # when
    documented = {
        path: {method for method in operations if method in HTTP_METHODS}
        for path, operations in schema["paths"].items()
    }
    # then
    for path, methods in AUTH_AND_USERS.items():
        assert path in documented, path
        assert documented[path] >= methods, (path, documented[path])


def test_the_schema_declares_bearer_authentication(schema):
    # then
    assert schema["components"]["securitySchemes"]["Bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    me = schema["paths"]["/api/v1/auth/me/"]["get"]
    assert me["security"] == [{"Bearer": []}]
    assert "security" not in schema


def test_register_login_and_refresh_need_no_authentication(schema):
    # then
    for path in ("/api/v1/auth/register/", "/api/v1/auth/login/", "/api/v1/auth/refresh/"):
        assert "security" not in schema["paths"][path]["post"], path


def test_errors_are_documented_with_the_envelope(schema):
    # given
    login = schema["paths"]["/api/v1/auth/login/"]["post"]
    # then
    assert {"200", "400", "401", "429"} <= set(login["responses"])
    refusal = login["responses"]["401"]["content"]["application/json"]["schema"]
    assert refusal == {"$ref": "#/components/schemas/ErrorEnvelope"}
    envelope = schema["components"]["schemas"]["ErrorBody"]
    assert set(envelope["properties"]) == {"code", "message", "details", "request_id"}


def test_the_login_response_documents_the_token_pair(schema):
    # given
    login = schema["paths"]["/api/v1/auth/login/"]["post"]
    ref = login["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    # when
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    # then
    assert set(component["properties"]) == {"access", "refresh", "token_type", "expires_in"}


def test_the_user_object_never_documents_a_password(schema):
    # then
    user = schema["components"]["schemas"]["User"]
    assert set(user["properties"]) == {
        "id",
        "username",
        "email",
        "role",
        "is_active",
        "created_at",
        "updated_at",
    }


def test_the_docs_page_is_swagger_ui(api_client):
    # when
    response = api_client.get("/api/docs/")
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "swagger-ui" in page.lower()
    assert "/api/schema/" in page
