"""Workloads benchmark: API req/s and p95 per instance, worker jobs/s, on real servers.

Run ``python -m bench.workloads [--json]``; see README.md beside this file.
"""
