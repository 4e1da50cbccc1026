"""Reconcile RetentionStacks: builders + kube + status conditions for one stack."""

from retention_operator.reconcile.stack import (
    Outcome,
    reconcile_stack,
    settle,
    transient,
    unobserved,
)
from retention_operator.reconcile.workqueue import WorkQueue

__all__ = ["Outcome", "WorkQueue", "reconcile_stack", "settle", "transient", "unobserved"]
