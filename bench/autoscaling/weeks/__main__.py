"""Write the multi-day traces (see the package docstring)."""

from __future__ import annotations

import sys

from bench.autoscaling.weeks import main

if __name__ == "__main__":
    sys.exit(main())
