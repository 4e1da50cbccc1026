"""The Argo CD health check in docs/gitops.md, run by Debian's lua5.4 on stack status fixtures.

The Lua is taken from the argocd-cm example in the doc, so what users copy is
what is tested. Argo CD runs the script as a chunk with the object in the
global ``obj`` and reads the table it returns; the harness below does the same.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "gitops.md"
STATUS = Path(__file__).resolve().parent / "fixtures" / "status"
HEALTH_KEY = "resource.customizations.health.retention.dev_RetentionStack"

EXPECTED = {
    "unobserved": "Progressing",
    "new": "Progressing",
    "ready": "Healthy",
    "stalled": "Degraded",
    "paused": "Suspended",
    "generation-ahead": "Progressing",
    "deleting": "Progressing",
}

RUNNER = """
local check = assert(load(io.open(arg[1]):read("a"), "health.lua"))
obj = {obj}
local hs = check()
io.write(hs.status, "\\t", hs.message or "")
"""


def health_check_lua() -> str:
    """The Lua of the argocd-cm example in docs/gitops.md."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    for block in blocks:
        doc = yaml.safe_load(block)
        if isinstance(doc, dict) and HEALTH_KEY in doc.get("data", {}):
            return str(doc["data"][HEALTH_KEY])
    raise AssertionError(f"no argocd-cm with {HEALTH_KEY} in {DOC}")


def lua_literal(value: Any) -> str:
    """``value`` (parsed YAML) as a Lua table constructor; null becomes nil as in Argo CD."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        items = (f"[{json.dumps(str(k))}] = {lua_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as Lua")


def run_health(lua: Path, tmp_path: Path, obj: dict[str, Any]) -> tuple[str, str]:
    script = tmp_path / "health.lua"
    script.write_text(health_check_lua())
    runner = tmp_path / "runner.lua"
    runner.write_text(RUNNER.replace("{obj}", lua_literal(obj)))
    out = subprocess.run(
        [str(lua), str(runner), str(script)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    status, message = out.stdout.split("\t", 1)
    return status, message


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_health_of_each_stack_status(lua: Path, tmp_path: Path, name: str) -> None:
    obj = yaml.safe_load((STATUS / f"{name}.yaml").read_text())
    status, message = run_health(lua, tmp_path, obj)
    assert status == EXPECTED[name], message
    assert message, "Argo CD shows the message next to the status"


def test_degraded_shows_the_operators_reason_and_message(lua: Path, tmp_path: Path) -> None:
    obj = yaml.safe_load((STATUS / "stalled.yaml").read_text())
    _, message = run_health(lua, tmp_path, obj)
    assert message.startswith("SecretNotFound: Secret shop/orders-postgres")


def test_generation_ahead_says_which_generation(lua: Path, tmp_path: Path) -> None:
    obj = yaml.safe_load((STATUS / "generation-ahead.yaml").read_text())
    _, message = run_health(lua, tmp_path, obj)
    assert "generation 3" in message and "observed 2" in message


def test_every_fixture_has_an_expectation() -> None:
    assert {p.stem for p in STATUS.glob("*.yaml")} == set(EXPECTED)
