"""The closed loop on real pods: the operator's autoscaler beside real KEDA and the real HPA.

``python -m bench.closedloop --trace T [--json]`` (``make bench-closedloop``): see
``__main__`` for the run, ``arms`` for how each arm scales and who owns
``spec.replicas``, ``plant`` for the cluster and the stacks, ``run`` for the load,
``figures`` for what is measured. README.md has the figures of a run.
"""
