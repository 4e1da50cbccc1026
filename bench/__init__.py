"""Benchmarks and simulators of retention-stack (not timed tests)."""
