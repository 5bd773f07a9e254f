"""The docker/ folder: every setting documented, the compose stack complete, gunicorn draining,
and every service of the image getting past start-up with the container's environment."""

import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from tests.processes import QUEUES, current_database_url, log_tails, purge_queues, wait_for
from transactions import services, tasks
from transactions.models import Transaction, TransactionStatus, TransactionType
from wallet_project.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
SETTINGS = ROOT / "wallet_project" / "settings.py"

ENV_READ = re.compile(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""")
OS_ENV_READ = re.compile(r"""os\.environ(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]*)["']""")
COMPOSE_VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")


def _documented_variables() -> set[str]:
    text = (DOCKER / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "docker-compose.yml").read_text())


def _runtime_instructions() -> list[str]:
    """The instructions of the Dockerfile's last stage (the image that runs), one a line."""
    runtime = (DOCKER / "Dockerfile").read_text().split("\nFROM ")[-1]
    return runtime.replace("\\\n", " ").splitlines()


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match.group(1))


def test_env_example_lists_every_variable_the_settings_read():
    # given
    source = SETTINGS.read_text()
    read = set(ENV_READ.findall(source)) | set(OS_ENV_READ.findall(source))
    # when
    missing = read - _documented_variables()
    # then
    assert read, "no environment reads found: the pattern is out of date"
    assert not missing, f"add to docker/.env.example: {sorted(missing)}"


def test_env_example_lists_every_variable_the_compose_file_and_gunicorn_read():
    # given
    compose = (DOCKER / "docker-compose.yml").read_text()
    gunicorn = (DOCKER / "gunicorn.conf.py").read_text()
    read = set(COMPOSE_VARIABLE.findall(compose))
    read |= set(re.findall(r"""_int\(\s*["']([A-Z0-9_]+)["']""", gunicorn))
    read |= set(OS_ENV_READ.findall(gunicorn))
    # when
    missing = read - _documented_variables()
    # then
    assert not missing, f"add to docker/.env.example: {sorted(missing)}"


def test_env_example_holds_no_secret_values():
    # given
    text = (DOCKER / ".env.example").read_text()
    # then
    for name in ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        assert re.search(rf"^{name}=$", text, flags=re.MULTILINE), name


def test_compose_runs_the_whole_stack():
    # when
    services = _compose()["services"]
    # then
    assert set(services) >= {
        "app",
        "worker",
        "beat",
        "postgres",
        "redis",
        "prometheus",
        "grafana",
        "migrate",
    }
    assert services["app"]["command"] == ["gunicorn", "--config", "docker/gunicorn.conf.py"]
    assert "worker" in services["worker"]["command"]
    assert "beat" in services["beat"]["command"]
    for name in ("app", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert services[name]["environment"]["DJANGO_ENV"] == "production"


def test_compose_gives_gunicorn_time_to_drain_before_sigkill():
    # given
    app = _compose()["services"]["app"]
    graceful = int(re.search(r":-(\d+)", app["environment"]["GUNICORN_GRACEFUL_TIMEOUT"])[1])
    # then
    assert app["stop_signal"] == "SIGTERM"
    assert _seconds(app["stop_grace_period"]) > graceful


def test_prometheus_scrapes_the_api_metrics():
    # when
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    # then
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["wallet-api"]
    assert api["metrics_path"] == "/metrics"
    assert api["static_configs"][0]["targets"] == ["app:8000"]


def test_grafana_provisions_the_datasource_its_dashboard_uses():
    # given
    datasources = yaml.safe_load(
        (DOCKER / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    dashboard = json.loads((DOCKER / "grafana/dashboards/wallet-overview.json").read_text())
    # then
    uids = {d["uid"] for d in datasources}
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["datasource"]["uid"] in uids, panel["title"]
        assert all(t["expr"] for t in panel["targets"]), panel["title"]


@pytest.mark.django_db
def test_the_dashboard_queries_only_metrics_the_api_exports(api_client):
    # given: some traffic, so every metric family has been created
    api_client.get("/health/live")
    api_client.post("/api/v1/auth/login", {}, format="json")
    exported = {
        line.split()[2]
        for line in api_client.get("/metrics").content.decode().splitlines()
        if line.startswith("# TYPE")
    }
    dashboard = json.loads((DOCKER / "grafana/dashboards/wallet-overview.json").read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    # when
    used = {
        name
        for expr in expressions
        for name in re.findall(r"\b((?:django|wallet)_[a-z0-9_]+)", expr)
    }
    # then: a histogram is exported by family name (`_bucket` is one of its series)
    families = {re.sub(r"_(bucket|total)$", "", name) for name in used}
    exported_families = {re.sub(r"_total$", "", name) for name in exported}
    assert families <= exported_families, sorted(families - exported_families)


def test_the_image_is_multi_stage_non_root_and_runs_gunicorn_with_the_config():
    # given
    dockerfile = (DOCKER / "Dockerfile").read_text()
    instructions = [
        line.split()[0] for line in dockerfile.splitlines() if line and line[0].isupper()
    ]
    # then
    assert instructions.count("FROM") >= 2
    assert "requirements/prod.txt" in dockerfile
    user_lines = [line for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert user_lines
    assert "root" not in user_lines[-1]
    assert 'CMD ["gunicorn", "--config", "docker/gunicorn.conf.py"]' in dockerfile
    assert "STOPSIGNAL SIGTERM" in dockerfile


def test_the_image_build_leaves_no_metrics_directory_behind():
    # given: the build steps that load the settings (which create the metrics directory)
    steps = [
        line for line in _runtime_instructions() if line.startswith("RUN ") and "manage.py" in line
    ]
    # then: they run without one, so no root-owned /tmp/prometheus ships in the image
    assert steps
    for step in steps:
        assert re.search(r"\bPROMETHEUS_MULTIPROC_DIR=(\s|$)", step), step


def test_the_gunicorn_config_is_valid_and_reads_its_workers_from_the_environment():
    # when
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "docker/gunicorn.conf.py", "--print-config"],
        cwd=ROOT,
        env={**os.environ, "GUNICORN_WORKERS": "3", "GUNICORN_GRACEFUL_TIMEOUT": "25"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then
    assert result.returncode == 0, result.stderr
    config = {
        key.strip(): value.strip()
        for key, _, value in (line.partition("=") for line in result.stdout.splitlines())
    }
    assert config["workers"] == "3"
    assert config["graceful_timeout"] == "25"
    assert config["accesslog"] == "None"
    assert config["wsgi_app"] == "wallet_project.wsgi:application"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


@pytest.mark.slow
def test_gunicorn_drains_an_in_flight_request_on_sigterm(tmp_path):
    # given: gunicorn with our config, serving the app plus a slow test route
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "GUNICORN_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    }
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "docker/gunicorn.conf.py",
            "tests.wallet_project.slow_wsgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if _get(f"{base}/health/live", timeout=2)[0] == 200:
                    break
            except OSError:
                time.sleep(0.3)
        assert _get(f"{base}/health/live")[0] == 200
        slow: dict = {}
        request = threading.Thread(
            target=lambda: slow.update(result=_get(f"{base}/test-only/slow?seconds=3"))
        )
        request.start()
        time.sleep(1)
        started = time.monotonic()
        # when
        server.send_signal(signal.SIGTERM)
        request.join(timeout=30)
        exit_code = server.wait(timeout=40)
        # then
        assert slow.get("result") == (200, b"drained")
        assert exit_code == 0
        assert time.monotonic() - started < 30
        log.flush()
        lines = (tmp_path / "gunicorn.log").read_text().splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert any(r.get("logger") == "gunicorn.error" for r in records), lines[-20:]
        assert any(r.get("path") == "/health/live" and r.get("status") == 200 for r in records)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        log.close()


# ---------------------------------------------------------------- the services, as the container runs them
#
# No container engine here: each compose service's command runs as a process on this host,
# from the repository root (the image's WORKDIR), with the environment the container gets:
# the image's ENV lines, docker/.env (made from .env.example), then the service's own
# `environment`. Only what a container sees differently is translated: /opt/venv is this
# virtualenv, /tmp is a fresh empty directory (the container's /tmp is an empty tmpfs), the
# `postgres` and `redis` service addresses are the test database and the test Redis, and
# the API listens on a free port.

CONTAINER_TMP = "/tmp"  # noqa: S108 - the container's path, translated below, never used here
CONTAINER_VENV = "/opt/venv"
SERVICE_HOSTS = re.compile(r"^\w+://(?:[^/@]*@)?(postgres|redis):\d+/")
COMPOSE_INTERPOLATION = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}")


def _image_environment() -> dict[str, str]:
    """The ENV instructions of the image that runs, in order."""
    environment: dict[str, str] = {}
    for line in _runtime_instructions():
        if line.startswith("ENV "):
            for pair in shlex.split(line.removeprefix("ENV ")):
                name, _, value = pair.partition("=")
                environment[name] = value
    return environment


def _env_file() -> dict[str, str]:
    """docker/.env as the README makes it: .env.example with its secrets set.

    Two commented defaults are uncommented with smaller values, to start fewer processes.
    """
    text = (DOCKER / ".env.example").read_text()
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, flags=re.MULTILINE))
    values |= {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "GUNICORN_WORKERS": "2",
        "CELERY_WORKER_CONCURRENCY": "2",
    }
    return values


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?message}`, from `variables`."""

    def substitute(match: re.Match) -> str:
        name, operator, argument = match.groups()
        if variables.get(name):
            return variables[name]
        assert operator == ":-", f"compose needs {name}: {argument}"
        return argument

    return COMPOSE_INTERPOLATION.sub(substitute, value)


def _on_this_host(value: str, *, tmp: Path) -> str:
    """A value naming container paths, naming this host's equivalents instead.

    The container's /tmp is recognised in the value as written, before the host's paths
    (which may themselves lie under /tmp, as a checkout there does) are put in.
    """
    if value == CONTAINER_TMP or value.startswith(f"{CONTAINER_TMP}/"):
        value = str(tmp) + value.removeprefix(CONTAINER_TMP)
    return value.replace(CONTAINER_VENV, sys.prefix).replace("$PATH", os.environ["PATH"])


class Stack:
    """The compose file's application services, run as processes with their container's view."""

    def __init__(self, *, tmp_path: Path, test_services: dict[str, str], port: int) -> None:
        self.tmp = tmp_path / "tmp"
        self.tmp.mkdir()
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.test_services = test_services
        self.port = port
        self.env_file = _env_file()
        self.compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
        self.running: dict[str, subprocess.Popen] = {}

    def command(self, service: str) -> list[str]:
        command = self.compose["services"][service]["command"]
        return [_on_this_host(_interpolate(arg, self.env_file), tmp=self.tmp) for arg in command]

    def environment(self, service: str) -> dict[str, str]:
        definition = self.compose["services"][service]
        assert definition["env_file"] == ".env"
        environment = {
            name: _on_this_host(value, tmp=self.tmp) for name, value in _image_environment().items()
        }
        environment |= self.env_file
        for name, value in definition["environment"].items():
            value = _interpolate(str(value), self.env_file)
            if SERVICE_HOSTS.match(value):
                assert name in self.test_services, f"{name}={value}: which test service is it?"
                value = self.test_services[name]
            environment[name] = value
        environment["PORT"] = str(self.port)
        return environment

    def log(self, service: str) -> str:
        path = self.logs / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def run(self, service: str, *, timeout: float) -> subprocess.CompletedProcess:
        """Run a one-shot service to its end."""
        with (self.logs / f"{service}.log").open("wb") as log:
            return subprocess.run(
                self.command(service),
                cwd=ROOT,
                env=self.environment(service),
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )

    def start(self, service: str) -> None:
        with (self.logs / f"{service}.log").open("wb") as log:
            self.running[service] = subprocess.Popen(
                self.command(service),
                cwd=ROOT,
                env=self.environment(service),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group: SIGKILL reaches the pool's children
            )

    def wait_for(self, what: str, condition: Callable[[], object], *, timeout: float = 30):
        """Poll `condition` until it holds; fail early, with the logs, if a service died."""
        return wait_for(what, condition, running=self.running, logs=self.logs, timeout=timeout)

    def stop(self, service: str, *, timeout: float = 30) -> int:
        """Stop a service as `docker compose stop` does: its stop signal, then SIGKILL."""
        process = self.running[service]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            return process.wait(timeout=10)

    def tails(self, lines: int = 15) -> str:
        return log_tails(self.logs, lines)


@pytest.fixture
def stack(transactional_db, settings, tmp_path) -> Iterator[Stack]:
    """The stack against the test database and Redis; this process publishes for real."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.task_always_eager = False
    purge_queues()
    started = Stack(
        tmp_path=tmp_path,
        test_services={
            "DATABASE_URL": current_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        },
        port=_free_port(),
    )
    try:
        yield started
    finally:
        for service in list(started.running):
            started.stop(service, timeout=20)
        purge_queues()
        celery_app.conf.task_always_eager = True


def _task_succeeded(log: str, name: str) -> bool:
    return re.search(rf"Task {re.escape(name)}\[[0-9a-f-]+\] succeeded", log) is not None


@pytest.mark.slow
@pytest.mark.celery_worker
def test_every_service_of_the_image_gets_past_start_up(stack, admin_user, user, settings):
    # given: the container's environment, an empty /tmp, and the queues the settings route to
    environment = stack.environment("worker")
    assert environment["DJANGO_ENV"] == "production"
    metrics_dir = Path(environment["PROMETHEUS_MULTIPROC_DIR"])
    assert metrics_dir.is_relative_to(stack.tmp)
    assert not metrics_dir.exists()
    declared = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    declared |= {queue.name for queue in getattr(settings, "CELERY_TASK_QUEUES", None) or ()}
    assert declared == set(QUEUES), "give the new queue a task below"

    # when: migrate runs to its end, then the API, the worker and beat start
    migrate = stack.run("migrate", timeout=60)
    assert migrate.returncode == 0, stack.tails()
    for service in ("app", "worker", "beat"):
        stack.start(service)

    # then: the worker is ready and does database work from every queue
    stack.wait_for("worker ready", lambda: " ready." in stack.log("worker"))
    txn = services.create_pending(
        actor=admin_user,
        kind=TransactionType.CREDIT,
        from_user=None,
        to_user=user,
        amount=Decimal("5.00"),
        currency="USD",
    )
    tasks.rebuild_stats.delay()
    stack.wait_for(
        "a pending credit completed by the worker (queue transactions)",
        lambda: Transaction.objects.get(pk=txn.pk).status == TransactionStatus.COMPLETED,
    )
    stack.wait_for(
        "maintenance.rebuild_stats run by the worker (queue maintenance)",
        lambda: _task_succeeded(stack.log("worker"), "maintenance.rebuild_stats"),
    )
    # and: beat started and sent a task, which the worker ran
    stack.wait_for("beat started", lambda: "beat: Starting" in stack.log("beat"))
    stack.wait_for(
        "beat sent scheduled.run_due_schedules",
        lambda: "Sending due task scheduled.run_due_schedules" in stack.log("beat"),
    )
    stack.wait_for(
        "scheduled.run_due_schedules run by the worker (queue scheduled)",
        lambda: _task_succeeded(stack.log("worker"), "scheduled.run_due_schedules"),
    )
    # and: the API is ready and its metrics are summed over its workers
    base = f"http://127.0.0.1:{stack.port}"

    def ready() -> dict | None:
        try:
            status, body = _get(f"{base}/health/ready", timeout=3)
        except OSError:
            return None
        return json.loads(body) if status == 200 else None

    readiness = stack.wait_for("the API ready", ready)
    assert readiness["status"] == "ok"
    assert set(readiness["components"].values()) == {"ok"}
    assert {"database", "cache", "broker"} <= set(readiness["components"])
    status, metrics = _get(f"{base}/metrics")
    assert status == 200
    assert b"django_db_execute_total" in metrics
    assert metrics_dir.is_dir()

    # when: the stack is stopped
    exit_codes = {service: stack.stop(service) for service in ("beat", "worker", "app")}
    # then: every service stopped cleanly, having logged no crash
    assert exit_codes == {"beat": 0, "worker": 0, "app": 0}, stack.tails()
    for service in ("migrate", "app", "worker", "beat"):
        assert "Traceback" not in stack.log(service), stack.tails(40)
