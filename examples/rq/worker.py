"""The worker: an RQ worker on the queue the API fills, with RQ's scheduler on (so jobs
enqueued with enqueue_in/enqueue_at run; the autoscaler counts due ones as waiting).

SIGTERM (a pod scaled in) is RQ's warm shutdown: the worker finishes the job it runs,
then exits; keep the pod's terminationGracePeriodSeconds (60 s for the workers) above the
longest job. RQ_KEY_PREFIX, which the operator sets, must be in the environment before
rq is imported.
"""

from __future__ import annotations

from rq import Queue, Worker
from settings import QUEUE_NAME, connection


def main() -> None:
    conn = connection()
    Worker([Queue(QUEUE_NAME, connection=conn)], connection=conn).work(with_scheduler=True)


if __name__ == "__main__":
    main()
