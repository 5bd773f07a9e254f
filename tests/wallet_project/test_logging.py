"""Structured logs: one JSON object per line, from the web process and from Celery workers."""

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import structlog

from wallet_project.logging import JsonFormatter

ROOT = Path(__file__).resolve().parents[2]


def _render(logger_name: str, emit) -> list[dict]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)  # whatever level earlier tests left on the root logger
    try:
        emit()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_standard_library_record_becomes_one_json_object_with_its_extras():
    # when
    (line,) = _render(
        "wallet.test",
        lambda: logging.getLogger("wallet.test").warning(
            "payout delayed %s", "PO-1", extra={"amount": "10.50"}
        ),
    )
    # then
    assert line["event"] == "payout delayed PO-1"
    assert line["amount"] == "10.50"
    assert line["level"] == "warning"
    assert line["logger"] == "wallet.test"
    assert line["timestamp"].endswith("Z")


def test_a_structlog_record_carries_the_bound_context():
    # given
    structlog.contextvars.bind_contextvars(request_id="ctx-logging-1")
    # when
    try:
        (line,) = _render(
            "wallet.test.structlog",
            lambda: structlog.get_logger("wallet.test.structlog").info("settled", batch=7),
        )
    finally:
        structlog.contextvars.clear_contextvars()
    # then
    assert line["event"] == "settled"
    assert line["batch"] == 7
    assert line["request_id"] == "ctx-logging-1"
    assert line["level"] == "info"


def test_an_exception_is_rendered_inside_the_json_line():
    # given
    def emit():
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("wallet.test.exc").exception("failed")

    # when
    (line,) = _render("wallet.test.exc", emit)
    # then
    assert line["event"] == "failed"
    assert "ValueError: boom" in line["exception"]


@pytest.mark.slow
def test_a_celery_worker_logs_json_lines():
    # given: a worker on a queue of its own, so it takes nobody's tasks
    queue = f"logging-test-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "wallet_project", "worker", "-Q", queue),
            *("--concurrency", "1", "--loglevel", "INFO", "--without-mingle", "--without-gossip"),
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = worker.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "ready." in line:
                break
        # when
        worker.send_signal(signal.SIGTERM)
        rest, _ = worker.communicate(timeout=30)
        lines.extend(rest.splitlines())
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    # then
    records = [json.loads(line) for line in lines if line.startswith("{")]
    ready = [r for r in records if r["event"].endswith("ready.")]
    assert ready, lines[-20:]
    assert ready[0]["logger"].startswith("celery")
    assert ready[0]["level"] == "info"
