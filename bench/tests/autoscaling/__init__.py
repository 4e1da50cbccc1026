"""Tests of the autoscaling simulator's baselines and plant."""
