"""Trace-driven autoscaling simulator: retention's policy against the HPA and KEDA-style.

``python -m bench.autoscaling --trace FILE [--policy retention|hpa|keda|all]
[--plant PLANT.json] [--timeline OUT.csv] [--json]``. See README.md for the plant
model, the baselines' settings and the measured figures.

Modules: :mod:`.trace` (reading load traces), :mod:`.latency` (M/M/c latency),
:mod:`.plant` (API pods, workers, queue, Prometheus), :mod:`.controllers` (the
policies at their own cadences), :mod:`.simulate` (the run and its figures).
"""
