"""Firewall rules that make a loopback port hang, not refuse, for the fault tests.

A stopped server refuses a connection at once; a server behind a firewall
does not answer at all, so a client waits for its own timeout. ``dropped``
inserts one iptables rule per port in the host's OUTPUT chain that drops TCP
packets to it (established connections included: there is no conntrack
exception), and deletes them when the block ends, however it ends. Every rule
carries :data:`COMMENT`, so rules left by a run that was killed are found and
removed before the next one, and a test can assert that none is left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator

COMMENT = "retention-e2e-firewall"


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("iptables")
    if binary is None:
        raise RuntimeError("iptables is not on PATH: `make packages` installs it")
    if os.geteuid() != 0:
        raise RuntimeError("the firewall faults need root to change iptables rules")
    return subprocess.run(
        [binary, "-w", "5", *args], capture_output=True, text=True, check=False, timeout=30
    )


def _rule(host: str, port: int) -> list[str]:
    return [
        "OUTPUT",
        *("-p", "tcp", "-d", host, "--dport", str(port)),
        *("-m", "comment", "--comment", COMMENT, "-j", "DROP"),
    ]


def leftovers() -> list[str]:
    """The rules of this module still in the OUTPUT chain, as ``iptables -S`` prints them."""
    listed = _iptables("-S", "OUTPUT")
    if listed.returncode != 0:
        raise RuntimeError(f"iptables -S OUTPUT failed: {listed.stderr.strip()}")
    return [line for line in listed.stdout.splitlines() if COMMENT in line]


def _remove_leftovers() -> None:
    for line in leftovers():
        # "-A OUTPUT ..." deleted as "-D OUTPUT ...": the same rule, word for word.
        words = line.split()
        words[0] = "-D"
        _iptables(*(word.strip('"') for word in words))
    left = leftovers()
    if left:
        raise RuntimeError(f"could not remove earlier firewall rules: {left}")


@contextlib.contextmanager
def dropped(*ports: int, host: str = "127.0.0.1") -> Iterator[None]:
    """Drop every TCP packet sent to ``host`` on ``ports`` for the duration of the block."""
    if not ports:
        raise ValueError("dropped() needs at least one port")
    _remove_leftovers()
    try:
        for port in ports:
            added = _iptables("-I", *_rule(host, port))
            if added.returncode != 0:
                raise RuntimeError(f"iptables could not drop {host}:{port}: {added.stderr.strip()}")
        yield
    finally:
        for port in ports:
            _iptables("-D", *_rule(host, port))
        left = leftovers()
        if left:
            raise RuntimeError(f"firewall rules left after the block: {left}")
