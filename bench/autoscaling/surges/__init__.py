"""The surge traces: short, repeated surges of several times the base load.

``python -m bench.autoscaling.surges`` writes them into ``bench/autoscaling/traces/surges``;
they are committed, and the generator is deterministic (seeded), so rerunning it
changes nothing.
"""
