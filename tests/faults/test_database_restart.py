"""PostgreSQL restarted under load: clients get 503s they can retry, never a 500, and the
service recovers by itself.

A PostgreSQL cluster of the test's own (so the machine's server is not disturbed), the
schema migrated into it, gunicorn serving the app on it, sixteen clients sending transfers,
then `pg_ctl restart -m fast` in the middle.
"""

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter

import pytest

from tests.faults.cluster import PrivateCluster, free_port, serve_app

pytestmark = pytest.mark.slow

CLIENTS = 16


def _post(url: str, body: dict, token: str | None = None, key: str | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def _login(base: str, username: str) -> tuple[str, int]:
    """A demo user's access token and id."""
    status, _, body = _post(
        f"{base}/api/v1/auth/login", {"username": username, "password": f"{username}-Demo-pass-1"}
    )
    assert status == 200, body
    token = body["access"]
    request = urllib.request.Request(
        f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return token, json.loads(response.read())["id"]


@pytest.fixture
def cluster():
    with PrivateCluster.in_temporary_directory() as started:
        yield started


def test_a_postgresql_restart_under_load_answers_503_and_recovers(cluster, tmp_path):
    # given: the app served by gunicorn on a database of its own, with the demo accounts
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve_app(cluster, port=port, logs=tmp_path) as app:
        alice, alice_id = _login(base, "alice")
        bob, bob_id = _login(base, "bob")
        answers: list[tuple[int, dict, dict]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def client(index: int) -> None:
            token, to = (alice, bob_id) if index % 2 else (bob, alice_id)
            while not stop.is_set():
                answer = _post(
                    f"{base}/api/v1/transactions/transfer",
                    {"to_user_id": to, "amount": "0.01"},
                    token=token,
                    key=str(uuid.uuid4()),
                )
                with lock:
                    answers.append(answer)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        # when: PostgreSQL restarts in the middle of the load
        time.sleep(2)
        before_restart = len(answers)
        cluster.restart()
        restarted = len(answers)
        time.sleep(2)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        # then: no 500, only transfers and retryable refusals
        statuses = Counter(status for status, _, _ in answers)
        assert before_restart > 0
        assert statuses[500] == 0, (statuses, app.tails())
        assert set(statuses) <= {201, 503}, statuses
        unavailable = [(h, b) for s, h, b in answers if s == 503]
        assert unavailable, f"the restart was not seen by any request: {statuses}"
        for headers, body in unavailable:
            assert body["error"]["code"] == "service_unavailable"
            assert body["error"]["details"]["retryable"] is True
            assert int(headers["Retry-After"]) >= 1
        assert len(answers) > restarted  # requests went on being served after the restart
        # and the next requests succeed, on every worker, without restarting anything
        after = [
            _post(
                f"{base}/api/v1/transactions/transfer",
                {"to_user_id": bob_id, "amount": "0.01"},
                token=alice,
            )[0]
            for _ in range(20)
        ]
        assert after == [201] * 20
        # and the ledger holds: every 201 moved money once, nothing else did
        assert cluster.ledger_holds()
