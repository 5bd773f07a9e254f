"""The project's infrastructure and its composition root.

Infrastructure, the bottom layer, imports none of the apps: the Celery app, database
helpers, errors, the exception handler and error envelope, logging, metrics, middleware,
health, pagination, parsers, routers, the OpenAPI schema helpers. The composition root, the
top layer, may import anything: `settings`, `urls`, `wsgi`, `asgi`, `launcher`. Between
them, bottom to top: `money`, `audit` (recording), `balances`, `accounts`, `transactions`,
then the interfaces (each app's views, serializers, admin, tasks and commands; `console`).
The import contracts in `pyproject.toml` enforce it.
"""

from wallet_project.celery import app as celery_app

__all__ = ("celery_app",)
