"""Tests of the benchmarks: the autoscaling simulator and its baselines (pure, no servers)."""
