"""Generate the RetentionStack CRD from the pydantic models in ``model``.

``python -m retention_operator.crdgen --write`` rewrites
``crds/retention.dev_retentionstacks.yaml``; ``--check`` exits 1 when the file
differs from what the models generate (CI and a unit test run it); with no
flag the CRD is printed to stdout.

pydantic emits JSON Schema (draft 2020-12); a CRD needs a *structural*
OpenAPI v3 schema (JSONSchemaProps, draft 4 flavoured). ``structural`` bridges
the two: it inlines ``$ref``, turns ``anyOf: [X, null]`` into ``X`` with
``nullable: true``, drops ``title``, ``additionalProperties: false`` and
``default: null``, and rewrites numeric ``exclusiveMinimum``/``exclusiveMaximum``
into ``minimum``/``maximum`` with the boolean flags. CEL rules
(``x-kubernetes-validations``) and list types come from the models'
``json_schema_extra`` and pass through untouched.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from retention_operator import names
from retention_operator.model import (
    MAX_STACK_NAME_LENGTH,
    RetentionStackSpec,
    RetentionStackStatus,
)

JsonDict = dict[str, Any]

CRD_FILE_NAME = f"{names.GROUP}_{names.PLURAL}.yaml"
HEADER = (
    "# Generated from operator/retention_operator/model.py by\n"
    "# `python -m retention_operator.crdgen --write` (make crds). Do not edit by hand.\n"
)

# Keys a structural schema must not carry (or that mean nothing to the API server).
_DROPPED_KEYS = frozenset({"title", "$defs", "examples"})

_READY_JSONPATH = '.status.conditions[?(@.type=="Ready")].status'

PRINTER_COLUMNS: list[JsonDict] = [
    {"name": "Ready", "type": "string", "jsonPath": _READY_JSONPATH},
    {
        "name": "API",
        "type": "integer",
        "jsonPath": ".status.apiReplicas",
        "description": "Ready API replicas.",
    },
    {
        "name": "Workers",
        "type": "integer",
        "jsonPath": ".status.workerReplicas",
        "description": "Ready workers.",
    },
    {
        "name": "P95",
        "type": "number",
        "jsonPath": ".status.p95Milliseconds",
        "description": "Last p95 API latency, in milliseconds.",
    },
    {
        "name": "Backlog",
        "type": "integer",
        "jsonPath": ".status.backlog",
        "description": "Last queue backlog (jobs waiting plus jobs in progress).",
    },
    {
        "name": "Reason",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        "priority": 1,
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

# Rules on the whole object. CEL may read metadata.name at the root.
ROOT_VALIDATIONS: list[JsonDict] = [
    {
        "rule": f"size(self.metadata.name) <= {MAX_STACK_NAME_LENGTH}",
        "message": f"metadata.name must be at most {MAX_STACK_NAME_LENGTH} characters so that "
        "the names of the stack's objects stay within 63",
    }
]


def structural(schema: JsonDict) -> JsonDict:
    """Return a structural OpenAPI v3 copy of a pydantic JSON schema.

    ``schema`` is the output of ``model_json_schema()``; its ``$defs`` resolve
    the references. The input is not modified.
    """
    definitions: Mapping[str, JsonDict] = schema.get("$defs", {})
    converted: JsonDict = _convert(schema, definitions)
    return converted


def _convert(node: Any, definitions: Mapping[str, JsonDict]) -> Any:
    if isinstance(node, list):
        return [_convert(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    # A nullable reference is anyOf: [{$ref}, null]: collapse first, then inline.
    node = _resolve_ref(_collapse_nullable(_resolve_ref(node, definitions)), definitions)
    out: JsonDict = {}
    for key, value in node.items():
        if _is_dropped(key, value):
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # Draft 4 (JSONSchemaProps): a bound plus a boolean flag.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key in ("properties", "default") or key.startswith("x-kubernetes-"):
            # Property names and literal values are data, not schema keywords.
            out[key] = (
                {name: _convert(sub, definitions) for name, sub in value.items()}
                if key == "properties"
                else copy.deepcopy(value)
            )
        else:
            out[key] = _convert(value, definitions)
    return out


def _resolve_ref(node: JsonDict, definitions: Mapping[str, JsonDict]) -> JsonDict:
    """Inline ``$ref``; keys beside it (description, default) override the target's."""
    ref = node.get("$ref")
    if ref is None:
        return node
    target = definitions[ref.rsplit("/", 1)[-1]]
    merged = {**_resolve_ref(target, definitions)}
    merged.update({key: value for key, value in node.items() if key != "$ref"})
    return merged


def _collapse_nullable(node: JsonDict) -> JsonDict:
    """Rewrite ``anyOf: [X, {type: null}]`` as ``X`` plus ``nullable: true``."""
    variants = node.get("anyOf")
    if not isinstance(variants, list):
        return node
    others = [variant for variant in variants if variant != {"type": "null"}]
    if len(others) == len(variants):
        return node
    if len(others) != 1:
        raise ValueError(f"cannot make a structural schema of a union with null: {variants}")
    merged = {key: value for key, value in node.items() if key != "anyOf"}
    merged = {**others[0], **merged, "nullable": True}
    return merged


def _is_dropped(key: str, value: Any) -> bool:
    if key in _DROPPED_KEYS:
        return True
    if key == "additionalProperties" and value is False:
        return True
    return key == "default" and value is None


def openapi_schema() -> JsonDict:
    """Return the CRD's ``openAPIV3Schema``: the object with spec and status."""
    return {
        "type": "object",
        "description": "A queue-backed application: an HTTP API, queue workers, a Redis "
        "(managed Redis Cluster or external) carrying the jobs, and PgBouncer in front of an "
        "external PostgreSQL.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "Versioned schema of this representation of an object.",
            },
            "kind": {"type": "string", "description": "REST resource this object represents."},
            "metadata": {"type": "object"},
            "spec": structural(RetentionStackSpec.model_json_schema()),
            "status": structural(RetentionStackStatus.model_json_schema()),
        },
        "x-kubernetes-validations": ROOT_VALIDATIONS,
    }


def crd() -> JsonDict:
    """Return the CustomResourceDefinition as a dict (apiextensions.k8s.io/v1)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{names.PLURAL}.{names.GROUP}"},
        "spec": {
            "group": names.GROUP,
            "names": {
                "kind": names.KIND,
                "listKind": f"{names.KIND}List",
                "plural": names.PLURAL,
                "singular": names.SINGULAR,
                "shortNames": [names.SHORT_NAME],
                "categories": [names.CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": names.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def render() -> str:
    """Return the CRD file's text: a header comment and the YAML document."""
    body = yaml.safe_dump(crd(), sort_keys=False, width=100, allow_unicode=True)
    return HEADER + body


def default_path() -> Path:
    """Return ``crds/retention.dev_retentionstacks.yaml`` of this checkout."""
    return Path(__file__).resolve().parents[2] / "crds" / CRD_FILE_NAME


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (1: ``--check`` found a stale file)."""
    parser = argparse.ArgumentParser(
        prog="python -m retention_operator.crdgen", description=__doc__
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the CRD file")
    mode.add_argument("--check", action="store_true", help="exit 1 if the CRD file is stale")
    parser.add_argument("--output", type=Path, default=default_path(), help="the CRD file")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        args.output.write_text(text)
        print(f"wrote {args.output}")
        return 0
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date; run `make crds`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
