"""Operator unit tests.

A package on purpose: under --import-mode=importlib a test file outside any
package is imported as ``operator.tests.<name>``, and pytest then replaces the
standard library module ``operator`` with this folder (pydantic and asyncio
break). As a package, a test here is imported as ``tests.<name>`` instead.
Every subfolder with tests needs an ``__init__.py`` for the same reason.
"""
