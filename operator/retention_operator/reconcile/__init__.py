"""Reconcile RetentionStacks: builders + kube + status conditions for one stack."""

from retention_operator.reconcile.stack import Outcome, reconcile_stack, refresh_status

__all__ = ["Outcome", "reconcile_stack", "refresh_status"]
