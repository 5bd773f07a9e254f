"""Wallet settings: one module, configured only by environment variables (see README)."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

# ---------------------------------------------------------------- environment
BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
IS_PRODUCTION = DJANGO_ENV == "production"
INSECURE_SECRET_KEY = "django-insecure-development-only-key-change-me"  # noqa: S105

# Prometheus multiprocess mode: with this set, every process (gunicorn workers, migrate, the
# Celery worker and beat) keeps its metrics in files there, and the first metric it records
# (a database query's) fails if the directory is missing. A container's /tmp starts empty,
# so each process creates it here, before any metric exists.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
if PROMETHEUS_MULTIPROC_DIR:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------- core Django
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=INSECURE_SECRET_KEY)
DEBUG = env.bool("DJANGO_DEBUG", default=not IS_PRODUCTION)
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS",
    default=[] if IS_PRODUCTION else ["127.0.0.1", "localhost", "testserver"],
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
ROOT_URLCONF = "wallet_project.urls"
WSGI_APPLICATION = "wallet_project.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise serves the collected static files (admin, Swagger UI) in production;
# in development it falls back to the app directories.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
MAX_REQUEST_BODY_BYTES = 1024 * 1024
DEFAULT_CURRENCY = env.str("WALLET_DEFAULT_CURRENCY", default="USD")
CSRF_FAILURE_VIEW = "wallet_project.envelope.csrf_failure"

# ---------------------------------------------------------------- apps
INSTALLED_APPS = [
    "console",  # the back-office console; first, so its templates override the admin's
    "console.site.WalletAdminConfig",  # django.contrib.admin with the role-based site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc assets, served from the app
    "django_prometheus",
    "money",
    "accounts",
    "balances",
    "transactions",
    "audit",
]

# ---------------------------------------------------------------- middleware
MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "wallet_project.middleware.RequestIdMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "wallet_project.middleware.BodySizeLimitMiddleware",
    "wallet_project.middleware.ReadTimeoutMiddleware",
    # The admin console's sessions, user and messages; API requests pass them by.
    "wallet_project.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "wallet_project.middleware.AuthenticationMiddleware",
    "wallet_project.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "wallet_project.metrics.PrometheusAfterMiddleware",
]
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ---------------------------------------------------------------- database
DATABASE_URL = env.str("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/wallet")
_db = env.db_url_config(DATABASE_URL)
_db["HOST"] = unquote(_db.get("HOST", ""))  # a socket directory may be percent-encoded
_db["ENGINE"] = "wallet_project.db_backend"
_db["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
_db["CONN_HEALTH_CHECKS"] = True
# Seconds a persistent connection may sit idle between requests and still skip the health
# check (`SELECT 1`) before its next request; 0 checks before every request.
_db["HEALTH_CHECK_AFTER_IDLE"] = env.float("DATABASE_HEALTH_CHECK_AFTER_IDLE", default=1.0)
_db.setdefault("OPTIONS", {})
# Server-side parameter binding: typed parameters, no client-side quoting.
_db["OPTIONS"]["server_side_binding"] = env.bool("DATABASE_SERVER_SIDE_BINDING", default=True)
# Server-side prepared statements: a statement run this many times on a connection is
# prepared and planned once (psycopg's threshold). Django turns them off for the sake of
# transaction-mode poolers; set DATABASE_PREPARE_THRESHOLD=none behind such a pooler.
_prepare = env.str("DATABASE_PREPARE_THRESHOLD", default="5").strip().lower()
_db["OPTIONS"]["prepare_threshold"] = None if _prepare in ("", "none", "off") else int(_prepare)
_db["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME", default=f"test_{_db['NAME']}")}
DATABASES = {"default": _db}
# The most time one statement of an API read (GET, HEAD) may take, in milliseconds (0: no
# limit). PostgreSQL stops a longer one and the request is answered 503 service_unavailable;
# writes never run under it (wallet_project.middleware.ReadTimeoutMiddleware).
API_READ_TIMEOUT_MS = env.int("API_READ_TIMEOUT_MS", default=5000)

# ---------------------------------------------------------------- cache
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="wallet"),
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
        },
    }
}

# The balance cache (balances.cache): `balances/current` from Redis, PostgreSQL the truth.
BALANCE_CACHE_ENABLED = env.bool("BALANCE_CACHE_ENABLED", default=True)
BALANCE_CACHE_TTL_SECONDS = env.int("BALANCE_CACHE_TTL_SECONDS", default=3600)
# Its breaker: this many Redis failures in a row open it; reads then go to PostgreSQL alone
# for this many seconds before one trial call.
BALANCE_CACHE_BREAKER_FAILURES = env.int("BALANCE_CACHE_BREAKER_FAILURES", default=3)
BALANCE_CACHE_BREAKER_RESET_SECONDS = env.float("BALANCE_CACHE_BREAKER_RESET_SECONDS", default=5.0)
# warm_cache and its beat task: the accounts whose balances changed this recently, at most so many.
BALANCE_CACHE_WARM_WINDOW_SECONDS = env.int("BALANCE_CACHE_WARM_WINDOW_SECONDS", default=3600)
BALANCE_CACHE_WARM_LIMIT = env.int("BALANCE_CACHE_WARM_LIMIT", default=10000)

# ---------------------------------------------------------------- auth and passwords
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["accounts.backends.UsernameOrEmailBackend"]

# ---------------------------------------------------------------- REST framework
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.AuditorsReadOnly"],
    "DEFAULT_PARSER_CLASSES": ["wallet_project.parsers.DecimalJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "wallet_project.pagination.CursorPagination",
    "EXCEPTION_HANDLER": "wallet_project.exception_handler.handle_exception",
    # DRF's throttles, letting requests through when Redis is down (accounts/throttles.py).
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.throttles.AnonRateThrottle",
        "accounts.throttles.UserRateThrottle",
        "accounts.throttles.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="600/min"),
        "user": env.str("THROTTLE_USER", default="100000/min"),
        "login": env.str("THROTTLE_LOGIN", default="20/min"),
        "register": env.str("THROTTLE_REGISTER", default="20/min"),
    },
    "LOGIN_FAILURES_PER_USERNAME": env.int("LOGIN_FAILURES_PER_USERNAME", default=10),
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": True,
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    # Tokens carry a digest of the password hash: a password change ends them at once.
    "CHECK_REVOKE_TOKEN": True,
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default=SECRET_KEY),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
}

# ---------------------------------------------------------------- OpenAPI
SPECTACULAR_SETTINGS = {
    "TITLE": "Wallet API",
    "DESCRIPTION": "Wallets, money movement, balances at any instant, and an audit trail.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    # Swagger UI and Redoc load their scripts, styles and icon from the app's own static
    # files (drf-spectacular-sidecar), never a CDN: the docs work offline and need no
    # third-party origin in a Content-Security-Policy.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "APPEND_COMPONENTS": {
        "securitySchemes": {"Bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    },
    "SECURITY": [{"Bearer": []}],
    # Several models have a `status`: one named enum each (batch items and scheduled runs
    # share theirs, OutcomeStatus).
    "ENUM_NAME_OVERRIDES": {
        "TransactionStatusEnum": "transactions.models.TransactionStatus",
        "BatchStatusEnum": "transactions.models.BatchStatus",
        "OutcomeStatusEnum": "transactions.models.OutcomeStatus",
        "ScheduleStatusEnum": "transactions.models.ScheduleStatus",
    },
}

# ---------------------------------------------------------------- CORS and security
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_METHODS = ["DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"]
CORS_ALLOW_HEADERS = ["authorization", "content-type", "idempotency-key", "x-request-id", "prefer"]
CORS_EXPOSE_HEADERS = [
    "x-request-id",
    "idempotent-replayed",
    "retry-after",
    "preference-applied",
]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if IS_PRODUCTION:
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
METRICS_BEARER_TOKEN = env.str("METRICS_BEARER_TOKEN", default="")

# ---------------------------------------------------------------- Celery
# Background work that made no progress for this long is stalled: due schedules not yet run,
# an unsealed audit tail, a batch without progress. /health/ready and the console's
# dashboard report it, and a stalled batch is started again.
STALL_AFTER_SECONDS = env.float("STALL_AFTER_SECONDS", default=60.0)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True  # tasks record their outcome in the database
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# A task is acknowledged after it ran, and re-delivered if its worker died: every task is
# idempotent (see transactions/tasks.py), so running one twice is harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=600)
CELERY_TASK_DEFAULT_QUEUE = "transactions"
# The queues a worker consumes when started without `-Q`: all of them, so a plain
# `celery -A wallet_project worker` runs every kind of work. Operators who split the work
# name queues with `-Q` (one worker `-Q transactions`, another `-Q scheduled,maintenance`).
# Each queue has its own exchange and routing key, as Celery makes for a routed queue it
# creates itself: a queue left without them would be bound to the default exchange and key,
# and every message would be delivered to all three.
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name, type="direct"), routing_key=name)
    for name in ("transactions", "scheduled", "maintenance")
]
CELERY_TASK_ROUTES = {
    "transactions.*": {"queue": "transactions"},
    "scheduled.*": {"queue": "scheduled"},
    "maintenance.*": {"queue": "maintenance"},
}
# Redis redelivers a message not acknowledged within this time (a worker lost mid-task).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
}
CELERY_BEAT_SCHEDULE: dict = {
    # Every 5 seconds: claim the scheduled transfers that are due and queue their runs.
    "scheduled.run_due_schedules": {
        "task": "scheduled.run_due_schedules",
        "schedule": 5.0,
        "options": {"expires": 5.0},
    },
    # Every minute: queue again pending transactions whose message was lost.
    "maintenance.requeue_stale_pending": {
        "task": "maintenance.requeue_stale_pending",
        "schedule": 60.0,
    },
    # Every quarter of STALL_AFTER_SECONDS (15 s by default): start again the batches that
    # made no progress for STALL_AFTER_SECONDS (a worker died in the middle of a chunk).
    "maintenance.resume_stalled_batches": {
        "task": "maintenance.resume_stalled_batches",
        "schedule": max(STALL_AFTER_SECONDS / 4, 1.0),
        "options": {"expires": max(STALL_AFTER_SECONDS / 4, 1.0)},
    },
    # Every minute: queue again scheduled runs claimed but never finished.
    "maintenance.requeue_stale_runs": {
        "task": "maintenance.requeue_stale_runs",
        "schedule": 60.0,
    },
    # Every minute: rebuild the transaction counters from the database if they are missing.
    "maintenance.rebuild_stats": {"task": "maintenance.rebuild_stats", "schedule": 60.0},
    # Every five minutes: read the recently active accounts' balances into the cache.
    "maintenance.warm_balance_cache": {
        "task": "maintenance.warm_balance_cache",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
    # Every hour: delete idempotency keys older than their 24-hour retention.
    "maintenance.expire_idempotency_keys": {
        "task": "maintenance.expire_idempotency_keys",
        "schedule": 3600.0,
    },
    # Every 10 seconds: seal the audit events whose transactions have finished.
    "maintenance.seal_audit": {
        "task": "maintenance.seal_audit",
        "schedule": 10.0,
        "options": {"expires": 10.0},
    },
    # Every day: delete refresh tokens that have expired (and their blacklist rows).
    "maintenance.flush_expired_tokens": {
        "task": "maintenance.flush_expired_tokens",
        "schedule": 86400.0,
    },
    # Every 5 minutes: reconcile the ledger invariants and the audit trail.
    "maintenance.reconcile": {"task": "maintenance.reconcile", "schedule": 300.0},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# ---------------------------------------------------------------- logging
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# Celery workers and beat keep this configuration (JSON lines) instead of installing their own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "wallet_project.logging.JsonFormatter"},
        "console": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json" if LOG_FORMAT == "json" else "console",
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR", "propagate": True},
        "django.server": {"level": "WARNING", "propagate": True},
    },
}

# ---------------------------------------------------------------- production guard
if IS_PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_DEBUG must be off when DJANGO_ENV=production.")
    if SECRET_KEY == INSECURE_SECRET_KEY or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "Set DJANGO_SECRET_KEY to a random value of 50+ characters in production."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("Set DJANGO_ALLOWED_HOSTS when DJANGO_ENV=production.")
