"""gunicorn settings for the Wallet API (the container runs `gunicorn -c docker/gunicorn.conf.py`).

Every value comes from the environment, with production defaults. See docker/README.md.

Graceful shutdown: on SIGTERM the arbiter closes the listening socket (no new connections),
sends SIGTERM to its workers, and each worker finishes the request it is serving before it
exits. Workers still busy after `graceful_timeout` seconds are killed. The container's stop
timeout (`stop_grace_period` in docker-compose.yml) is longer than `graceful_timeout`, so
in-flight requests, money movements included, drain before Docker sends SIGKILL. A money
movement is one database transaction: a killed worker leaves nothing half-applied.
"""

import multiprocessing
import os
import shutil
from pathlib import Path

from gunicorn import glogging


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


wsgi_app = "wallet_project.wsgi:application"
bind = [f"0.0.0.0:{_int('PORT', 8000)}"]

# Processes: one per core plus one by default (the API is I/O bound on PostgreSQL).
workers = _int("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1)
threads = _int("GUNICORN_THREADS", 1)
worker_class = "gthread" if threads > 1 else "sync"
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)  # recycle workers: bounded memory growth
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)  # not all at once

# Time limits. A request taking longer than `timeout` kills its worker; money movements
# retry lock conflicts a bounded number of times, well inside it.
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)  # longer than nothing, shorter than the LB's idle timeout

# Heartbeat files in memory, not on the container's (possibly read-only, overlay) disk.
SHARED_MEMORY = Path("/dev/shm")  # noqa: S108 - a tmpfs owned by the kernel, as gunicorn advises
worker_tmp_dir = str(SHARED_MEMORY) if SHARED_MEMORY.is_dir() else None

# Requests: refuse oversized request lines and headers early (the app limits bodies).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# Behind a reverse proxy: which addresses may set X-Forwarded-Proto (and friends).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


# Logging. No gunicorn access log: the app writes one JSON line per request (with
# request_id, user_id, status, duration_ms). gunicorn's own messages use the same formatter.
class _NoAccessLogger(glogging.Logger):
    """gunicorn's logger without the access log (not even formatted and dropped)."""

    def access(self, resp, req, environ, request_time) -> None:
        return None


logger_class = _NoAccessLogger
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
capture_output = False
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "wallet_project.logging.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "json",
        }
    },
    "root": {"level": loglevel.upper(), "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"handlers": [], "level": loglevel.upper(), "propagate": True},
        "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}

# The control socket is for interactive administration; a container is managed by signals.
control_socket_disable = True
proc_name = "wallet-api"


# Prometheus: each worker is a process with its own counters. With PROMETHEUS_MULTIPROC_DIR
# set, prometheus_client writes them to files there and /metrics sums them over workers.
def on_starting(server) -> None:
    """Start every deployment with no metrics files (stale ones would add up).

    Each worker creates the directory again when it loads the settings, before its first
    metric (wallet_project/settings.py).
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)


def child_exit(server, worker) -> None:
    """Forget a dead worker's live gauges (its counters stay summed in)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def worker_int(worker) -> None:
    worker.log.info("worker interrupted; finishing the current request")


def on_exit(server) -> None:
    server.log.info("gunicorn stopped: every worker drained")
