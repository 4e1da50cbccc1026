"""Unit tests of the pure builders (a package: see ``tests/__init__.py``)."""
