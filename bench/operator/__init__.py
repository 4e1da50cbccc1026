"""Benchmark: how long the operator takes to reconcile many new stacks."""
