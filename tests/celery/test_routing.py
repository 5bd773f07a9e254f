"""Each task lands once, in the queue its name routes it to, on the real brokers (Redis, the
default, and RabbitMQ, which deployments may choose)."""

import socket
import time

import pytest
from kombu import Connection

from tests.processes import QUEUES
from wallet_project.celery import app

pytestmark = pytest.mark.celery_worker

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request, settings):
    """A connection to each broker, with the worker's queues declared (as a worker does)
    and empty before and after the test."""
    if request.param == "rabbitmq":
        if not _reachable(5672):
            pytest.skip("RabbitMQ is not running on 127.0.0.1:5672")
        url = RABBITMQ_URL
    else:
        url = settings.CELERY_BROKER_URL
    app.conf.task_always_eager = False
    with Connection(url) as conn:
        channel = conn.default_channel
        for queue in app.amqp.queues.values():
            queue.bind(channel).declare()
            queue.bind(channel).purge()
        try:
            yield conn
        finally:
            for queue in app.amqp.queues.values():
                queue.bind(channel).purge()
            app.conf.task_always_eager = True


def _depth(conn: Connection, queue: str) -> int:
    channel = conn.default_channel
    if conn.transport_cls == "amqp" or conn.transport.driver_type == "amqp":
        return channel.queue_declare(queue=queue, passive=True).message_count
    return channel.client.llen(queue)


def test_every_declared_queue_has_its_own_exchange_and_routing_key():
    # when
    queues = app.amqp.queues
    # then
    assert set(queues) == set(QUEUES)
    for name, queue in queues.items():
        assert (queue.exchange.name, queue.routing_key) == (name, name)


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("transactions.start_batch", "transactions"),
        ("scheduled.run_due_schedules", "scheduled"),
        ("maintenance.seal_audit", "maintenance"),
    ],
)
def test_a_task_is_delivered_to_its_queue_only(broker, task, queue):
    # when
    with app.amqp.Producer(broker) as producer:
        app.send_task(task, kwargs={}, producer=producer)
    # then (RabbitMQ routes a published message a moment after the publish returns)
    deadline = time.monotonic() + 5
    while _depth(broker, queue) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    depths = {name: _depth(broker, name) for name in QUEUES}
    assert depths == {name: int(name == queue) for name in QUEUES}
