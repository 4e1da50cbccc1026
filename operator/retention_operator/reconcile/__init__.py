"""Reconcile RetentionStacks: builders + kube + status conditions for one stack."""

from retention_operator.reconcile.stack import (
    Outcome,
    Recheck,
    reconcile_stack,
    settle,
    transient,
    unobserved,
)
from retention_operator.reconcile.workqueue import WorkQueue

__all__ = [
    "Outcome",
    "Recheck",
    "WorkQueue",
    "reconcile_stack",
    "settle",
    "transient",
    "unobserved",
]
