"""Copy crds/retention.dev_retentionstacks.yaml into the chart as a template.

``python charts/retention-operator/hack/sync_crds.py --write`` (``make
chart-crds``) rewrites ``templates/crd-retentionstacks.yaml``; ``--check``
exits 1 when the chart's copy differs from what crds/ gives. The spec is
copied line for line; only the wrapping is added: ``crds.install`` around the
whole document, the chart's labels, and ``helm.sh/resource-policy: keep``
behind ``crds.keep`` (Helm never upgrades files in a chart's crds/ folder, so
the CRD is a template, as in cert-manager's chart).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

CHART = Path(__file__).resolve().parents[1]
REPO = CHART.parents[1]
SOURCE = REPO / "crds" / "retention.dev_retentionstacks.yaml"
TARGET = CHART / "templates" / "crd-retentionstacks.yaml"

HEAD = """\
{{- if .Values.crds.install }}
# Copied from crds/retention.dev_retentionstacks.yaml by `make chart-crds`.
# Do not edit by hand: a test fails when the two differ.
"""
METADATA_EXTRA = """\
  labels:
    helm.sh/chart: {{ include "retention-operator.chart" . }}
    app.kubernetes.io/name: {{ include "retention-operator.name" . }}
    app.kubernetes.io/instance: {{ .Release.Name }}
    app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
    app.kubernetes.io/managed-by: {{ .Release.Service }}
    app.kubernetes.io/part-of: retention-stack
  {{- if .Values.crds.keep }}
  annotations:
    helm.sh/resource-policy: keep
  {{- end }}
"""
TAIL = "{{- end }}\n"


def render(source: str) -> str:
    """Return the chart template for the CRD text ``source``.

    Raises ValueError when the source carries template delimiters (they would
    be read as Go templates) or metadata the wrapping would duplicate.
    """
    if "{{" in source or "}}" in source:
        raise ValueError(f"{SOURCE.name} contains '{{{{' or '}}}}', which Helm would evaluate")
    lines = [line for line in source.splitlines() if not line.startswith("#")]
    while lines and lines[0] in ("", "---"):
        lines.pop(0)
    try:
        meta = lines.index("metadata:")
    except ValueError:
        raise ValueError(f"{SOURCE.name} has no top-level metadata") from None
    end = meta + 1
    while end < len(lines) and lines[end].startswith("  "):
        if lines[end].startswith(("  labels:", "  annotations:")):
            raise ValueError(f"{SOURCE.name} already has metadata labels or annotations")
        end += 1
    body = "\n".join(lines[:end]) + "\n" + METADATA_EXTRA + "\n".join(lines[end:]) + "\n"
    return HEAD + body + TAIL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the chart's CRD template")
    mode.add_argument("--check", action="store_true", help="exit 1 if the template is stale")
    args = parser.parse_args(argv)
    wanted = render(SOURCE.read_text())
    if args.write:
        TARGET.write_text(wanted)
        return 0
    if not TARGET.exists() or TARGET.read_text() != wanted:
        stale = f"{TARGET.relative_to(REPO)} differs from {SOURCE.relative_to(REPO)}"
        print(f"{stale}: run make chart-crds", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
