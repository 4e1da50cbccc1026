"""Kubernetes resource quantities as numbers (pure).

Only what the builders need: a memory quantity as bytes, to size what runs
inside a container from its limit (Redis's ``maxmemory``).
"""

from __future__ import annotations

import re
from decimal import Decimal

_SUFFIXES: dict[str, Decimal] = {
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30),
    "Ti": Decimal(2**40), "Pi": Decimal(2**50), "Ei": Decimal(2**60),
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9),
    "T": Decimal(10**12), "P": Decimal(10**15), "E": Decimal(10**18),
}  # fmt: skip
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE](?P<exponent>[+-]?[0-9]+))?$"
)


def to_bytes(quantity: int | str) -> int:
    """Return a quantity (``256Mi``, ``1G``, ``1e9``, ``1048576``) as a whole number, rounded up.

    Raises ValueError for text that is not a Kubernetes quantity.
    """
    if isinstance(quantity, int):
        return quantity
    found = _QUANTITY.match(quantity.strip())
    if found is None:
        raise ValueError(f"{quantity!r} is not a Kubernetes quantity")
    number = Decimal(found["number"])
    if found["exponent"] is not None:
        value = number.scaleb(int(found["exponent"]))
    else:
        value = number * _SUFFIXES[found["suffix"] or ""]
    return int(value.to_integral_value(rounding="ROUND_CEILING"))
