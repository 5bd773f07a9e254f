"""Money: currencies (`models`), amounts (`amounts`), their serializer fields (`fields`) and
the default currencies (`currencies`). It imports only the infrastructure; every app uses it."""
