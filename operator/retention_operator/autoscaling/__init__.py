"""Autoscaling of a stack's API and workers.

Pure parts (no I/O; an import-linter contract holds :mod:`.policy` and
:mod:`.hpa` to it): :mod:`.config` (per-component configuration),
:mod:`.samples` (signal samples, replicas, the bounded history), :mod:`.state`
(Decision and the state carried between ticks), :mod:`.rates`, :mod:`.limits`,
:mod:`.api` and :mod:`.workers` (the models), :mod:`.policy` (``decide``, the entry
point) and :mod:`.hpa` (the HPA and KEDA-style baselines the simulator compares
against). The I/O parts read the signals and run the batched loop.
"""
