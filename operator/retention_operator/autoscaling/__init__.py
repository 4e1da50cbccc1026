"""Autoscaling of a stack's API and workers.

Pure parts (no I/O; an import-linter contract holds :mod:`.policy` to it):
:mod:`.config` (the shared block of scaling fields and each component's own),
:mod:`.samples` (signal samples, replicas, the bounded history), :mod:`.state`
(Decision and the state carried between ticks), :mod:`.rates`, :mod:`.limits`,
:mod:`.api` and :mod:`.workers` (the models), :mod:`.policy` (``decide_api`` and
``decide_workers``, the entry points) and :mod:`.components` (each component as
one strategy of the loop). The I/O parts read the signals (:mod:`.signals`) and
run the batched loop (:mod:`.loop`). The baselines the simulator compares
against live in ``bench/autoscaling``: the operator does not ship its competitor.
"""
