"""The workloads image of retention-stack: the HTTP API and the queue worker.

Two entry points share this package: :func:`retention_workloads.api.run`
(``retention-api``) and :func:`retention_workloads.worker.run`
(``retention-worker``). Names shared with the operator come from
:mod:`retention_contract`; this package never imports ``retention_operator``.
"""
