"""The replicated set-up, started once for the module (scripts/prod/topology.py).

PostgreSQL, Redis, the action server, two Rasa replicas, the chat page, the review
app and nginx, on free ports on 127.0.0.1, with their data in a temporary directory
that is deleted at the end. The clinic's notification webhook points at a port where
nothing listens yet: tests/webhook_receiver.py is started there by the last test, so
the target is down for minutes while the other tests run.

Skipped only when PostgreSQL, Redis or nginx is missing and can't be installed (no
apt, no root); any other failure to start is an error.
"""
from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from scripts.prod import nginx as nginx_script
from scripts.prod import postgres as postgres_script
from scripts.prod import redis as redis_script
from scripts.prod.topology import Ports, Topology


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    for install, missing in ((postgres_script.install, postgres_script.PostgresUnavailable),
                             (redis_script.install, redis_script.RedisUnavailable),
                             (nginx_script.install, nginx_script.NginxError)):
        try:
            install()
        except missing as error:
            pytest.skip(f"a server of the replicated set-up can't be installed: {error}")
    webhook_port = free_port()
    ports = Ports(nginx=free_port(), rasa=[free_port(), free_port()], actions=free_port(), web=free_port(),
                  review=free_port(), postgres=free_port(), redis=free_port())
    topology = Topology(Path(tempfile.mkdtemp(prefix="topology-")), ports=ports,
                        webhook_url=f"http://127.0.0.1:{webhook_port}/notify",
                        # Tests can't wait 5 minutes between tries, nor 10 s for the action
                        # server to be tried again after it returns.
                        extra_env={"OUTBOX_MAX_BACKOFF": "5", "ACTION_SERVER_RETRY_AFTER": "3"})
    topology.webhook_port = webhook_port  # type: ignore[attr-defined]
    topology.started_at = time.monotonic()  # type: ignore[attr-defined]
    try:
        topology.start()
        yield topology
    finally:
        topology.stop(destroy=True)


