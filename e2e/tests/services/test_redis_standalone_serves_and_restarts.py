"""The standalone Redis answers on its URL and comes back on the same port after a stop."""

from __future__ import annotations

import pytest
import redis

from harness.services import RedisServer

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]


def test_url_reaches_the_server(redis_db: RedisServer) -> None:
    assert redis_db.url == f"redis://127.0.0.1:{redis_db.port}/0"
    assert redis_db.password is None
    with redis.Redis.from_url(redis_db.url, decode_responses=True) as conn:
        conn.set("greeting", "hello")
        assert conn.get("greeting") == "hello"


def test_redis_db_starts_each_test_empty(redis_db: RedisServer) -> None:
    with redis_db.client() as conn:
        assert conn.dbsize() == 0


def test_stopped_server_starts_again_on_the_same_port(redis_standalone: RedisServer) -> None:
    port = redis_standalone.port
    redis_standalone.stop()
    with pytest.raises(redis.ConnectionError), redis_standalone.client(timeout=0.5) as conn:
        conn.ping()
    redis_standalone.start()
    assert redis_standalone.port == port
    assert redis_standalone.ping()
