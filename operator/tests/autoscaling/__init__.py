"""Tests of the autoscaling package (a package: see ``tests/__init__.py``)."""
