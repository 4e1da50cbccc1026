"""What an image is built from, reduced to one hash: the cache key of :mod:`harness.images`.

Pure functions over files and strings; nothing here runs a build. The hash of
an image covers its Dockerfile, every file its ``COPY``/``ADD`` lines take
from the build context, and the recipe values that shape it (the base image's
hash, build arguments, tool versions). Any change to one of them changes the
hash; nothing else does (``__pycache__`` folders and ``*.pyc`` files are left
out, as the repository's ``.dockerignore`` leaves them out of the context).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

# Files a build never sees (see .dockerignore); they differ between machines.
_IGNORED_DIRS = frozenset({"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"})
_IGNORED_SUFFIXES = (".pyc", ".pyo")


def _logical_lines(text: str) -> Iterator[str]:
    """Yield the Dockerfile's instructions, continuation lines joined, comments dropped."""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending.strip():
        yield pending


def context_sources(dockerfile: str) -> list[str]:
    """Return the build-context paths that ``dockerfile``'s COPY and ADD lines read.

    Copies from another stage (``--from=``) read no context and are skipped;
    flags (``--chown=``, ``--chmod=``) are dropped; both the shell form and the
    JSON form are understood. Paths keep their spelling (``operator/pkg/``).
    Raises ValueError for a COPY or ADD with no source or with a wildcard,
    which this hash cannot follow.
    """
    sources: list[str] = []
    for line in _logical_lines(dockerfile):
        word, _, rest = line.partition(" ")
        if word.upper() not in ("COPY", "ADD"):
            continue
        rest = rest.strip()
        args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        flags = [a for a in args if a.startswith("--")]
        paths = [a for a in args if not a.startswith("--")]
        if any(f.startswith("--from=") for f in flags):
            continue
        if len(paths) < 2:
            raise ValueError(f"{word} needs a source and a destination: {line!r}")
        for src in paths[:-1]:
            if any(ch in src for ch in "*?["):
                raise ValueError(f"the image hash cannot follow wildcards in {word}: {src!r}")
            sources.append(src)
    return sources


def _files(root: Path) -> Iterator[Path]:
    """Yield the files under ``root`` (or ``root`` itself), sorted, ignored ones left out."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in _IGNORED_DIRS for part in rel.parts):
            continue
        if path.is_file() and not path.name.endswith(_IGNORED_SUFFIXES):
            yield path


def hash_files(context: Path, paths: Iterable[str]) -> str:
    """Return a sha256 over the named context paths: names, executable bits and contents.

    Raises FileNotFoundError naming a path that is not in ``context`` (a
    Dockerfile that copies a missing file would fail to build anyway).
    """
    digest = hashlib.sha256()
    for name in sorted(set(paths)):
        top = context / name
        if not top.exists():
            raise FileNotFoundError(f"{name!r} is not in the build context {context}")
        for path in _files(top):
            rel = path.relative_to(context).as_posix()
            executable = "x" if path.stat().st_mode & 0o111 else "-"
            digest.update(f"{rel}\0{executable}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def input_hash(
    *, dockerfile: str, context_hash: str, recipe: Mapping[str, str], base_hash: str | None
) -> str:
    """Return the cache key of one image from everything that shapes it.

    ``recipe`` holds the values that are not files (build arguments, tool and
    release versions); ``base_hash`` is the input hash of the image it is
    built on, or None for an image built on nothing of ours.
    """
    record = {
        "dockerfile": hashlib.sha256(dockerfile.encode()).hexdigest(),
        "context": context_hash,
        "recipe": dict(sorted(recipe.items())),
        "base": base_hash,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
