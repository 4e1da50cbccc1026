"""``python -m bench.tick``: the CPU one autoscaling tick costs the operator at rest.

The real :class:`AutoscalingLoop` (its :class:`SignalReader`, policy and status
comparison) over N stacks, in one process, on a real Redis from the harness; the API
server is dicts (:mod:`.kube`), which is what the operator's watch cache is at rest,
so the CPU measured is the tick's own. Each stack's queue is the default Redis Stream
with its consumer group, ``--entries`` jobs added, all delivered and acknowledged: a
stack at rest at its minimum, as in ``python -m bench.operator``'s at-rest window
(there the streams do not exist, which reads cheaper than a running application's).

Each measurement runs in a subprocess (:mod:`.run`): ``--warm`` ticks first (125 fill
the ten-minute history a running operator has), then ``--ticks`` measured ones, and
prints the process's CPU seconds per tick (``time.process_time``: a busy machine
disturbs it less than wall time), the queue read's part of it, the wall time, and the
Redis server's CPU per tick.

``--baseline-rev REV`` measures that revision's ``operator/`` package (a ``git
archive`` of it) the same way on the same Redis, each stack count alternately with
this checkout's (``--rounds`` times, in turn), and prints the ratio of each round
(this checkout over the baseline): before and after side by side in one run.
``--baseline-parser`` instead measures this checkout a second time with redis-py's
pure-Python reply parser (``hiredis`` hidden from it), the operator before it
depended on hiredis. Prints one JSON object; ``--markdown`` also prints table rows
for bench/operator/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import retention_contract as contract
from bench.tick.run import NAMESPACE
from harness.controlplane import REPO_ROOT
from harness.redis_servers import start_redis


def fill_streams(url: str, stacks: int, *, entries: int) -> None:
    """Every stack's stream with its group, ``entries`` jobs delivered and acknowledged."""
    import redis

    with redis.Redis.from_url(url, decode_responses=True) as conn:
        for n in range(stacks):
            stream = contract.default_stream(NAMESPACE, f"s{n:04d}")
            pipe = conn.pipeline(transaction=False)
            pipe.delete(stream)
            pipe.xgroup_create(stream, contract.DEFAULT_QUEUE_GROUP, id="0", mkstream=True)
            for i in range(entries):
                pipe.xadd(stream, {"job": str(i)})
            pipe.execute()
            delivered = conn.xreadgroup(
                contract.DEFAULT_QUEUE_GROUP, "worker-0", {stream: ">"}, count=entries
            )
            ids = [entry_id for _, batch in delivered for entry_id, _ in batch]
            if ids:
                conn.xack(stream, contract.DEFAULT_QUEUE_GROUP, *ids)


def checkout(rev: str, into: Path) -> Path:
    """``operator/`` and ``contract/`` of ``rev``, extracted under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", rev, "operator", "contract"],
        check=True,
        capture_output=True,
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


# The run module started with hiredis unimportable: redis-py then parses in Python.
_WITHOUT_HIREDIS = (
    "import runpy, sys; sys.modules['hiredis'] = None; "
    "runpy.run_module('bench.tick.run', run_name='__main__', alter_sys=True)"
)


def measure(
    source: Path | None,
    *,
    redis_url: str,
    stacks: int,
    warm: int,
    ticks: int,
    python_parser: bool = False,
) -> dict[str, Any]:
    """One run of :mod:`.run`, with ``source``'s packages first on the path if given,
    and without hiredis if ``python_parser``."""
    env = dict(os.environ)
    if source is not None:
        paths = [str(source / part) for part in ("operator", "contract")]
        env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")])
    start = ["-c", _WITHOUT_HIREDIS] if python_parser else ["-m", "bench.tick.run"]
    command = [sys.executable, *start, "--redis-url", redis_url]
    command += ["--stacks", str(stacks), "--warm", str(warm), "--ticks", str(ticks)]
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def markdown(rows: list[dict[str, Any]]) -> str:
    """Table rows: stacks, revision, CPU per tick (all, queue read), wall, Redis, ratio."""
    lines = [
        "| stacks | revision | CPU s/tick | of which queue read | wall s/tick "
        "| Redis CPU s/tick | CPU ratio | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = row.get("cpu_ratio")
        lines.append(
            f"| {row['stacks']} | {row['revision']} | {row['cpu_s_per_tick']} "
            f"| {row['read_cpu_s_per_tick']} | {row['wall_s_per_tick']} "
            f"| {row['redis_cpu_s_per_tick']} | {'' if ratio is None else ratio} "
            f"| {', '.join(str(x) for x in row['load'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, nargs="+", default=[300, 1000])
    parser.add_argument("--warm", type=int, default=125, help="ticks before measuring")
    parser.add_argument("--ticks", type=int, default=10, help="ticks measured")
    parser.add_argument("--entries", type=int, default=10, help="jobs each stream has had")
    baseline = parser.add_mutually_exclusive_group()
    baseline.add_argument("--baseline-rev", help="a git revision to measure beside this checkout")
    baseline.add_argument(
        "--baseline-parser",
        action="store_true",
        help="measure this checkout with redis-py's pure-Python parser beside it",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="measurements of each side, taken in turn"
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    head = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "operator", "contract"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    head += "+changes" if dirty else ""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-tick-") as tmp:
        base = None
        if args.baseline_rev:
            base = checkout(args.baseline_rev, Path(tmp) / "baseline")
        redis = start_redis(base_dir=Path(tmp) / "redis")
        try:
            fill_streams(redis.url, max(args.stacks), entries=args.entries)
            # (label, source, pure-Python parser): the baseline first, then this checkout.
            sides: list[tuple[str, Path | None, bool]] = [(head, None, False)]
            if base is not None:
                sides.insert(0, (args.baseline_rev, base, False))
            elif args.baseline_parser:
                sides.insert(0, (f"{head} (Python parser)", None, True))
            for stacks in args.stacks:
                for _ in range(args.rounds):
                    measured = {}
                    for revision, source, python_parser in sides:
                        result = measure(
                            source,
                            redis_url=redis.url,
                            stacks=stacks,
                            warm=args.warm,
                            ticks=args.ticks,
                            python_parser=python_parser,
                        )
                        measured[revision] = result
                        rows.append({"revision": revision, **result})
                        print(json.dumps(rows[-1]), file=sys.stderr)
                    if len(sides) == 2:
                        ours, theirs = measured[head], measured[sides[0][0]]
                        rows[-1]["cpu_ratio"] = round(
                            ours["cpu_s_per_tick"] / theirs["cpu_s_per_tick"], 2
                        )
        finally:
            redis.stop()
    print(json.dumps({"rows": rows}, indent=2))
    if args.markdown:
        print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
