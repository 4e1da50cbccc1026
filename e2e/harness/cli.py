"""Command line of the harness, behind ``make cluster-up``, ``make demo`` and friends.

Each command prints progress to stderr and its result as the last line of
stdout (``KUBECONFIG=<path>``; ``IMAGES=<path>`` for ``images``, a JSON file
of image name -> local reference), so scripts can take it with ``tail -n1``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import controlplane, demo, gitops_record, images


def _cluster_up(args: argparse.Namespace) -> int:
    cp = controlplane.ensure_control_plane(
        Path(args.run_dir).resolve(), real_node=not args.kwok_only
    )
    print(f"control plane: {cp.server} (logs in {cp.run_dir / 'logs'})", file=sys.stderr)
    print(f"KUBECONFIG={cp.kubeconfig}")
    return 0


def _cluster_down(args: argparse.Namespace) -> int:
    cp = controlplane.ControlPlane.load(Path(args.run_dir).resolve())
    if cp is None:
        print("control plane: not running", file=sys.stderr)
        return 0
    left = cp.stop()
    print(
        "control plane: stopped" + (f"; could not remove: {left}" if left else ""), file=sys.stderr
    )
    return 1 if left else 0


def _demo_up(args: argparse.Namespace) -> int:
    return demo.up(Path(args.run_dir).resolve(), example=args.example)


def _demo_down(args: argparse.Namespace) -> int:
    return demo.down(Path(args.run_dir).resolve())


def _demo_load(args: argparse.Namespace) -> int:
    return demo.load(Path(args.run_dir).resolve(), jobs=args.jobs)


def _gitops_table(args: argparse.Namespace) -> int:
    return gitops_record.generate(check=args.check)


def _images(args: argparse.Namespace) -> int:
    names = [n for n in args.only.split(",") if n] if args.only else None
    try:
        built = images.build(names)
    except (images.BuildError, ValueError) as exc:
        print(f"images: {exc}", file=sys.stderr)
        return 1
    for image in built.values():
        state = "cached" if image.cached else "built"
        print(f"{image.name:10} {state:6} {image.ref}  {image.archive}", file=sys.stderr)
    print(f"IMAGES={images.write_refs(built)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run one command; return the process exit code."""
    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, default in (
        ("cluster-up", _cluster_up, ".run/cluster"),
        ("cluster-down", _cluster_down, ".run/cluster"),
        ("demo-up", _demo_up, ".run"),
        ("demo-down", _demo_down, ".run"),
        ("demo-load", _demo_load, ".run"),
    ):
        cmd = sub.add_parser(name)
        cmd.add_argument(
            "--run-dir", default=default, help="where state, logs and the kubeconfig live"
        )
        if name == "demo-up":
            cmd.add_argument(
                "--example",
                default="",
                help="run an example as the API and workers (bullmq); empty: the project's own",
            )
        if name == "demo-load":
            cmd.add_argument("--jobs", type=int, default=2000, help="how many jobs to POST")
        if name == "cluster-up":
            cmd.add_argument(
                "--kwok-only",
                action="store_true",
                help="no real node: KWOK nodes only (needs no root; pods run nothing)",
            )
        cmd.set_defaults(func=func)
    table = sub.add_parser(
        "gitops-table", help="record every status case and rewrite docs/gitops.md's table"
    )
    table.add_argument("--check", action="store_true", help="only say whether the doc is current")
    table.set_defaults(func=_gitops_table)
    cmd = sub.add_parser(
        "images", help="build the images (cached by their inputs); last line is IMAGES=<json>"
    )
    cmd.add_argument(
        "--only",
        default="",
        help=f"comma-separated subset of {','.join((*images.NAMES, *images.EXAMPLES))}",
    )
    cmd.set_defaults(func=_images)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result
