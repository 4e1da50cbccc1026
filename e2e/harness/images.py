"""The project's container images, built without a Docker engine and cached by their inputs.

Called by ``make images`` (``python -m harness images``), the real node and the
demo. Ten images, each an OCI archive in ``~/.cache/retention-stack/images``
with the local reference ``localhost/retention-stack/<name>:<hash prefix>``:

- ``base``: a debootstrap minbase of Debian (the release these machines run)
  with its python3; ``e2e/images/base``.
- ``operator`` and ``workloads``: ``operator/Dockerfile`` and
  ``workloads/Dockerfile`` on ``base``, each with its own side of ``uv.lock``.
- ``redis``, ``redis-exporter`` and ``pgbouncer``: Debian's packages on ``base``,
  shaped like the public images the operator's builders default to;
  ``pgbouncer-exporter``: PgBouncer's exporter from PyPI on Debian's libraries;
  ``e2e/images/<name>``.
- ``pause``: the pod sandbox, a static C program of ours ``FROM scratch``.
- ``coredns`` and ``local-path-provisioner``: the real node's add-ons, the
  binaries ``e2e/controlplane/build.sh node`` builds, ``FROM scratch``.

An image's cache key (:mod:`harness.image_inputs`) covers its Dockerfile, the
files it copies, its recipe (release, mirror, tool versions) and its base's
key; an image whose key is unchanged is not built again. Builds run under a
file lock, so concurrent callers wait rather than collide. Progress goes to
stderr.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness import image_inputs
from harness.buildah import Buildah, BuildError, log, run, unmount_all_under

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "e2e" / "images"
REGISTRY = "localhost/retention-stack"
NAMES = (
    "base",
    "pause",
    "operator",
    "workloads",
    "redis",
    "redis-exporter",
    "pgbouncer",
    "pgbouncer-exporter",
    "coredns",
    "local-path-provisioner",
)
# Images of examples/, built on request only (``make example-images``): no test of
# ``make test`` runs them.
EXAMPLES = ("example-bullmq", "example-rq")
HASH_PREFIX = 12
# The release these machines run; base images are built from it.
DEBIAN_RELEASE = "bookworm"
HOST_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
PAUSE_CFLAGS = ("-static", "-O2", "-s", "-Wall", "-Wextra", "-Werror")
# Archives kept per image beyond the current one, least recently used dropped first:
# worktrees and branches of one machine share the cache.
KEEP_OLD_ARCHIVES = 5

__all__ = ["EXAMPLES", "NAMES", "BuildError", "BuiltImage", "build", "cache_dir", "import_into"]


@dataclass(frozen=True)
class BuiltImage:
    """One built image: its local reference, OCI archive and manifest digest.

    ``digest`` is the manifest digest in the archive's index, the one
    containerd reports after an import. ``cached`` is True when this call
    found the image already built.
    """

    name: str
    ref: str
    archive: Path
    digest: str
    input_hash: str
    cached: bool = False


@dataclass(frozen=True)
class _Spec:
    """How one image is built: its Dockerfile, context, base and recipe."""

    name: str
    dockerfile: Path
    context: Path
    base: str | None = None
    # Files the build makes in a scratch context (not inputs), and inputs no COPY names.
    generated: tuple[str, ...] = ()
    extra_inputs: tuple[str, ...] = ()
    recipe: Callable[[], dict[str, str]] = dict
    prepare: Callable[[Path, str], None] | None = None
    host_ca: bool = False
    squash: bool = False
    timeout: float = 1800


def cache_dir() -> Path:
    """Return the image cache, ``~/.cache/retention-stack/images`` by default.

    The same root as e2e/controlplane/build.sh's binary cache
    (``$RETENTION_CACHE_DIR``, else ``$XDG_CACHE_HOME/retention-stack``).
    """
    root = os.environ.get("RETENTION_CACHE_DIR")
    if root:
        return Path(root) / "images"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "retention-stack" / "images"


def _host_mirror() -> str:
    """Return the first Debian mirror of the host's debian.sources (deb.debian.org if none)."""
    try:
        text = HOST_SOURCES.read_text()
    except OSError:
        return DEFAULT_MIRROR
    for stanza in text.split("\n\n"):
        fields = dict(
            line.split(":", 1) for line in stanza.splitlines() if ":" in line and line[:1] != "#"
        )
        suites = fields.get("Suites", "").split()
        if DEBIAN_RELEASE in suites and fields.get("URIs", "").strip():
            return fields["URIs"].split()[0]
    return DEFAULT_MIRROR


def _sources_text() -> str:
    """Return the apt sources the base image carries: the host's, or the release's main suite."""
    try:
        return HOST_SOURCES.read_text()
    except OSError:
        return (
            f"Types: deb\nURIs: {DEFAULT_MIRROR}\n"
            f"Suites: {DEBIAN_RELEASE} {DEBIAN_RELEASE}-updates\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )


def _package_version(package: str) -> str:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or "absent"


def _base_recipe() -> dict[str, str]:
    return {
        "release": DEBIAN_RELEASE,
        "mirror": _host_mirror(),
        "sources": _sources_text(),
        "debootstrap": _package_version("debootstrap"),
    }


def _prepare_base(context: Path, label: str) -> None:
    sources = context / "debian.sources"
    sources.write_text(_sources_text())
    script = SOURCES / "base" / "make-rootfs.sh"
    try:
        run(
            ["bash", str(script), str(context), DEBIAN_RELEASE, _host_mirror(), str(sources)],
            label=label,
            timeout=1800,
        )
    finally:
        unmount_all_under(context)


def _pause_recipe() -> dict[str, str]:
    gcc = run(["gcc", "-dumpfullversion"], label="gcc", timeout=30, quiet=True).strip()
    libc = _package_version("libc6-dev")
    return {"gcc": gcc, "libc6-dev": libc, "cflags": " ".join(PAUSE_CFLAGS)}


def _prepare_pause(context: Path, label: str) -> None:
    run(
        ["gcc", *PAUSE_CFLAGS, "-o", str(context / "pause"), str(SOURCES / "pause" / "pause.c")],
        label=label,
        timeout=120,
    )


def _node_binary_recipe(name: str) -> dict[str, str]:
    """The pinned versions and the build recipe of one of the node's Go binaries."""
    from harness.controlplane import build_binaries

    recipe = build_binaries("node") / f".{name}.recipe"
    return {"bin_dir": build_binaries("node").name, "recipe": recipe.read_text()}


def _prepare_node_binary(name: str) -> Callable[[Path, str], None]:
    """Copy the node's built ``name`` (``build.sh node``) into the build context."""

    def prepare(context: Path, label: str) -> None:
        from harness.controlplane import build_binaries

        log(f"{label}: copying {name} from the node's binary cache")
        shutil.copy2(build_binaries("node") / name, context / name)

    return prepare


def _node_binary_spec(name: str) -> _Spec:
    return _Spec(
        name=name,
        dockerfile=SOURCES / name / "Dockerfile",
        context=SOURCES / name,
        generated=(name,),
        recipe=lambda: _node_binary_recipe(name),
        prepare=_prepare_node_binary(name),
    )


def _specs() -> dict[str, _Spec]:
    return {
        "base": _Spec(
            name="base",
            dockerfile=SOURCES / "base" / "Dockerfile",
            context=SOURCES / "base",
            generated=("rootfs.tar",),
            extra_inputs=("make-rootfs.sh",),
            recipe=_base_recipe,
            prepare=_prepare_base,
            squash=True,
        ),
        "pause": _Spec(
            name="pause",
            dockerfile=SOURCES / "pause" / "Dockerfile",
            context=SOURCES / "pause",
            generated=("pause",),
            extra_inputs=("pause.c",),
            recipe=_pause_recipe,
            prepare=_prepare_pause,
        ),
        "operator": _Spec(
            name="operator",
            dockerfile=REPO / "operator" / "Dockerfile",
            context=REPO,
            base="base",
            extra_inputs=(".dockerignore",),
            host_ca=True,
        ),
        "workloads": _Spec(
            name="workloads",
            dockerfile=REPO / "workloads" / "Dockerfile",
            context=REPO,
            base="base",
            extra_inputs=(".dockerignore",),
            host_ca=True,
        ),
        "redis": _Spec(
            name="redis",
            dockerfile=SOURCES / "redis" / "Dockerfile",
            context=SOURCES / "redis",
            base="base",
        ),
        "redis-exporter": _Spec(
            name="redis-exporter",
            dockerfile=SOURCES / "redis-exporter" / "Dockerfile",
            context=SOURCES / "redis-exporter",
            base="base",
        ),
        "pgbouncer": _Spec(
            name="pgbouncer",
            dockerfile=SOURCES / "pgbouncer" / "Dockerfile",
            context=SOURCES / "pgbouncer",
            base="base",
        ),
        "pgbouncer-exporter": _Spec(
            name="pgbouncer-exporter",
            dockerfile=SOURCES / "pgbouncer-exporter" / "Dockerfile",
            context=SOURCES / "pgbouncer-exporter",
            base="base",
            host_ca=True,
        ),
        # The real node's add-ons (harness.node.addons), from the node's binaries.
        "coredns": _node_binary_spec("coredns"),
        "local-path-provisioner": _node_binary_spec("local-path-provisioner"),
        "example-bullmq": _Spec(
            name="example-bullmq",
            dockerfile=REPO / "examples" / "bullmq" / "Dockerfile",
            context=REPO / "examples" / "bullmq",
            base="base",
            host_ca=True,
        ),
        "example-rq": _Spec(
            name="example-rq",
            dockerfile=REPO / "examples" / "rq" / "Dockerfile",
            context=REPO / "examples" / "rq",
            base="base",
            host_ca=True,
        ),
    }


def _closure(names: Iterable[str], specs: Mapping[str, _Spec]) -> list[str]:
    """Return ``names`` and the bases they need, bases first, in NAMES order."""
    wanted: set[str] = set()
    for name in names:
        if name not in specs:
            known = ", ".join((*NAMES, *EXAMPLES))
            raise ValueError(f"unknown image {name!r}; the images are {known}")
        current: str | None = name
        while current is not None and current not in wanted:
            wanted.add(current)
            current = specs[current].base
    return [n for n in (*NAMES, *EXAMPLES) if n in wanted]


def spec_hash(spec: _Spec, *, base_hash: str | None, tool_version: str) -> str:
    """Return ``spec``'s input hash, given its base's hash and the builder's version."""
    dockerfile = spec.dockerfile.read_text()
    copied = [s for s in image_inputs.context_sources(dockerfile) if s not in spec.generated]
    context_hash = image_inputs.hash_files(spec.context, [*copied, *spec.extra_inputs])
    recipe = {**spec.recipe(), "builder": tool_version}
    return image_inputs.input_hash(
        dockerfile=dockerfile, context_hash=context_hash, recipe=recipe, base_hash=base_hash
    )


def _ref(name: str, input_hash: str) -> str:
    return f"{REGISTRY}/{name}:{input_hash[:HASH_PREFIX]}"


def _archive_digest(archive: Path) -> str:
    """Return the manifest digest recorded in an OCI archive's index.json."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise BuildError(f"{archive} has no index.json")
        index = json.load(member)
    manifests = index.get("manifests") or []
    if len(manifests) != 1:
        raise BuildError(f"{archive} holds {len(manifests)} manifests, not one")
    digest: str = manifests[0]["digest"]
    return digest


def _host_ca_bundle() -> Path | None:
    """Return the host's CA bundle (registry TLS here needs it), or None if there is none."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold the cache's build lock; say so when another build holds it first."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another image build to finish ({directory / '.lock'})")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class _Builder:
    """One build() call: the cache, the buildah storage and the hashes found so far."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.archives = directory / "archives"
        self.scratch = directory / "scratch"
        self.buildah = Buildah(root=directory / "storage", runroot=directory / "runroot")
        self.tool_version = self.buildah.version()
        self.built: dict[str, BuiltImage] = {}

    def _meta_path(self, name: str, input_hash: str) -> Path:
        return self.archives / f"{name}-{input_hash[:HASH_PREFIX]}.json"

    def _cached(self, name: str, input_hash: str) -> BuiltImage | None:
        meta_path = self._meta_path(name, input_hash)
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return None
        archive = Path(meta["archive"])
        if meta.get("input_hash") != input_hash or not archive.is_file():
            return None
        os.utime(archive)  # Recently used: the last to be pruned.
        return BuiltImage(
            name=name,
            ref=meta["ref"],
            archive=archive,
            digest=meta["digest"],
            input_hash=input_hash,
            cached=True,
        )

    def ensure(self, spec: _Spec) -> BuiltImage:
        base = self.built[spec.base] if spec.base else None
        input_hash = spec_hash(
            spec, base_hash=base.input_hash if base else None, tool_version=self.tool_version
        )
        hit = self._cached(spec.name, input_hash)
        if hit is not None:
            log(f"{spec.name}: cached {hit.ref}")
            return hit
        if base is not None and not self.buildah.has_image(base.ref):
            log(f"{base.name}: loading {base.ref} from its archive")
            self.buildah.load_archive(label=base.name, ref=base.ref, archive=base.archive)
        return self._build(spec, input_hash, base)

    def _build(self, spec: _Spec, input_hash: str, base: BuiltImage | None) -> BuiltImage:
        ref = _ref(spec.name, input_hash)
        shown = (
            spec.dockerfile.relative_to(REPO)
            if spec.dockerfile.is_relative_to(REPO)
            else spec.dockerfile
        )
        log(f"{spec.name}: building {ref} from {shown}")
        started = time.monotonic()
        context = spec.context
        scratch = self.scratch / f"{spec.name}-{input_hash[:HASH_PREFIX]}"
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            if spec.prepare is not None:
                # A scratch context holds the Dockerfile's folder and what prepare() makes.
                shutil.copytree(spec.context, scratch)
                spec.prepare(scratch, spec.name)
                context = scratch
            volumes: list[str] = []
            ca = _host_ca_bundle() if spec.host_ca else None
            if ca is not None:
                volumes.append(f"{ca}:/etc/ssl/certs/ca-certificates.crt:ro")
            self.buildah.bud(
                label=spec.name,
                dockerfile=spec.dockerfile if spec.prepare is None else scratch / "Dockerfile",
                context=context,
                ref=ref,
                build_args={"BASE_IMAGE": base.ref} if base else {},
                volumes=volumes,
                squash=spec.squash,
                timeout=spec.timeout,
            )
            image = self._archive(spec.name, ref, input_hash)
        finally:
            unmount_all_under(scratch)
            shutil.rmtree(scratch, ignore_errors=True)
        self.buildah.remove_other_tags(repository=f"{REGISTRY}/{spec.name}", keep=ref)
        self._prune_archives(spec.name, keep=image.archive)
        log(f"{spec.name}: built {ref} in {time.monotonic() - started:.0f} s")
        return image

    def _archive(self, name: str, ref: str, input_hash: str) -> BuiltImage:
        self.archives.mkdir(parents=True, exist_ok=True)
        archive = self.archives / f"{name}-{input_hash[:HASH_PREFIX]}.oci.tar"
        partial = archive.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        self.buildah.push_archive(label=name, ref=ref, archive=partial)
        digest = _archive_digest(partial)
        partial.rename(archive)
        image = BuiltImage(
            name=name, ref=ref, archive=archive, digest=digest, input_hash=input_hash
        )
        meta = {"ref": ref, "archive": str(archive), "digest": digest, "input_hash": input_hash}
        meta_path = self._meta_path(name, input_hash)
        meta_path.with_suffix(".partial").write_text(json.dumps(meta, indent=2) + "\n")
        meta_path.with_suffix(".partial").rename(meta_path)
        return image

    def _prune_archives(self, name: str, *, keep: Path) -> None:
        """Keep the newest KEEP_OLD_ARCHIVES archives of ``name`` besides ``keep``."""
        pattern = re.compile(rf"^{re.escape(name)}-[0-9a-f]{{{HASH_PREFIX}}}\.oci\.tar$")
        old = [p for p in self.archives.iterdir() if pattern.match(p.name) and p != keep]
        old.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in old[KEEP_OLD_ARCHIVES:]:
            stale.unlink(missing_ok=True)
            stale.with_name(stale.name.removesuffix(".oci.tar") + ".json").unlink(missing_ok=True)


def build(names: Iterable[str] | None = None) -> dict[str, BuiltImage]:
    """Build the named images (all of NAMES when None) unless cached; return them by name.

    Bases the named images need are built too but returned only if named.
    Idempotent: a second call with unchanged inputs builds nothing and
    returns the same references. Raises ValueError for an unknown name and
    BuildError (with the failing command's last output) if a build fails;
    a failed build leaves no archive, working container or mount behind.
    """
    specs = _specs()
    wanted = list(NAMES if names is None else names)
    order = _closure(wanted, specs)
    directory = cache_dir()
    with _locked(directory):
        builder = _Builder(directory)
        builder.buildah.clean_working_containers()
        try:
            for name in order:
                builder.built[name] = builder.ensure(specs[name])
        finally:
            builder.buildah.clean_working_containers()
            unmount_all_under(directory)
    return {name: builder.built[name] for name in order if name in wanted}


def write_refs(images: Mapping[str, BuiltImage]) -> Path:
    """Write ``{name: ref}`` of ``images`` to a JSON file in the cache and return its path.

    The file is named by its content, so concurrent builds of different trees
    never overwrite each other's.
    """
    text = json.dumps({name: img.ref for name, img in sorted(images.items())}, indent=2) + "\n"
    key = image_inputs.input_hash(dockerfile=text, context_hash="", recipe={}, base_hash=None)
    path = cache_dir() / "refs" / f"images-{key[:HASH_PREFIX]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.write_text(text)
        partial.rename(path)
    return path


def _ctr(address: Path, namespace: str, *args: str, timeout: float = 300) -> str:
    argv = ["ctr", "--address", str(address), "--namespace", namespace, *args]
    return run(argv, label="ctr", timeout=timeout, quiet=True)


def present_digests(*, address: Path, namespace: str = "k8s.io") -> dict[str, str]:
    """Return ``{ref: manifest digest}`` of the images in the containerd at ``address``."""
    found: dict[str, str] = {}
    for line in _ctr(address, namespace, "images", "list").splitlines()[1:]:
        columns = line.split()
        if len(columns) >= 3:
            found[columns[0]] = columns[2]
    return found


def import_into(
    images: Mapping[str, BuiltImage] | Iterable[BuiltImage],
    *,
    address: Path,
    namespace: str = "k8s.io",
    snapshotter: str = "overlayfs",
) -> list[str]:
    """Import the images' archives into the containerd listening on socket ``address``.

    An image already there under its ref with the same digest is skipped.
    Returns the refs imported (empty when all were present). Raises
    BuildError if ``ctr`` fails or an imported image does not show up under
    its ref with its digest.
    """
    todo = list(images.values()) if isinstance(images, Mapping) else list(images)
    present = present_digests(address=address, namespace=namespace)
    imported: list[str] = []
    for image in todo:
        if present.get(image.ref) == image.digest:
            log(f"{image.name}: already in containerd ({namespace}) as {image.ref}")
            continue
        log(f"{image.name}: importing {image.ref} into containerd ({namespace})")
        archive = str(image.archive)
        _ctr(address, namespace, "images", "import", f"--snapshotter={snapshotter}", archive)
        imported.append(image.ref)
    if imported:
        present = present_digests(address=address, namespace=namespace)
        for image in todo:
            if present.get(image.ref) != image.digest:
                raise BuildError(
                    f"{image.ref} is not in containerd with digest {image.digest} after the import"
                    f" (found {present.get(image.ref)})"
                )
    return imported
