"""PID 1 of a real node: reaps orphans and, on SIGTERM or SIGINT, exits.

The node's daemons (containerd, its shims, the kubelet, kube-proxy) run in a
PID namespace whose init is this program. When it exits, the kernel kills
every other process of the namespace, so stopping the node (or a crash of
the harness, through ``unshare --kill-child``) leaves no container behind.
Run as ``python -m harness.node.init``; it imports nothing of the harness.
"""

from __future__ import annotations

import os
import signal
import sys


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> int:
    """Block the signals it handles and wait for them; never returns except on TERM/INT."""
    watched = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    print("node init: running", flush=True)
    while True:
        info = signal.sigwaitinfo(watched)
        if info.si_signo == signal.SIGCHLD:
            _reap()
        else:
            print(f"node init: {signal.Signals(info.si_signo).name}, stopping", flush=True)
            return 0


if __name__ == "__main__":
    sys.exit(main())
