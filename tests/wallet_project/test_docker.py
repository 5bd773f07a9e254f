"""The docker/ folder: every setting documented, the compose stack complete, gunicorn draining."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

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
    read |= set(OS_ENV_READ.findall(gunicorn)) - {"PROMETHEUS_MULTIPROC_DIR"}
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
