"""``python -m retention_operator``: see :mod:`retention_operator.main`."""

from retention_operator.main import run

run()
