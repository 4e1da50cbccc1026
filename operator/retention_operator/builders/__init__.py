"""Pure builders: a RetentionStack in, Kubernetes manifests (plain dicts) out.

Each module builds the objects of one topic (``api``, ``workers``, ``redis``,
``pgbouncer``, ``networkpolicy``) from a parsed ``model.RetentionStack``;
``labels``, ``naming``, ``security``, ``env`` and ``ownership`` hold what they
share. No function here does I/O or imports kopf or a Kubernetes client (an
import-linter contract enforces it): the reconciler adds owner references with
``ownership.set_owner_reference`` and applies the result.
"""
