"""``harness.firewall``: a dropped port hangs a client (no refusal), and no rule outlives a run."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from harness import firewall
from harness.firewall import dropped, leftovers

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


@pytest.fixture
def listener() -> Iterator[int]:
    """A loopback server that accepts and answers one line per connection."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"hello\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    server.close()


def _answers(port: int, timeout: float) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            return conn.recv(16) == b"hello\n"
    except OSError:
        return False


def test_a_dropped_port_hangs_until_the_client_gives_up_then_answers_again(listener: int) -> None:
    assert _answers(listener, timeout=2)
    with dropped(listener):
        started = time.monotonic()
        assert not _answers(listener, timeout=1.5)
        # A hang, not a refusal: the client waited for its own timeout.
        assert time.monotonic() - started >= 1.4
    assert _answers(listener, timeout=2)
    assert leftovers() == []


def test_a_rule_left_by_a_killed_run_is_removed_by_the_next(listener: int) -> None:
    rule = firewall._rule("127.0.0.1", listener)
    assert firewall._iptables("-I", *rule).returncode == 0
    try:
        assert len(leftovers()) == 1
        with dropped(listener + 1 if listener < 65535 else listener - 1):
            assert len(leftovers()) == 1  # the new rule only: the old one is gone
            assert _answers(listener, timeout=2)
    finally:
        firewall._iptables("-D", *rule)
    assert leftovers() == []
