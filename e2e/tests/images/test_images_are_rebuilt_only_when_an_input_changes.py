"""``make images`` builds an image only when one of its inputs changed.

A second build of every image with nothing changed is all cache hits (no
buildah run), with the same references, and importing them again into a
containerd that has them imports nothing. In a cache of its own, the pause image is
built, then found cached, then rebuilt under a new reference once its C source
changes; the old archive stays for a tree that still has the old source.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from harness import images
from harness.buildah import mounts_under, unmount_all_under

pytestmark = [pytest.mark.node, pytest.mark.timeout(300)]


def test_unchanged_inputs_are_cache_hits(built_images: dict[str, images.BuiltImage]) -> None:
    started = time.monotonic()
    again = images.build()
    took = time.monotonic() - started
    assert {name: img.cached for name, img in again.items()} == {n: True for n in images.NAMES}
    assert {n: i.ref for n, i in again.items()} == {n: i.ref for n, i in built_images.items()}
    # No time bound: another tree's build may hold the cache's lock for a while.
    print(f"warm build of {len(again)} images: {took:.1f} s")


def test_importing_again_imports_nothing(
    containerd, built_images: dict[str, images.BuiltImage]
) -> None:
    assert images.import_into(built_images, address=containerd.address) == []
    present = images.present_digests(address=containerd.address)
    assert {img.ref: present.get(img.ref) for img in built_images.values()} == {
        img.ref: img.digest for img in built_images.values()
    }


def test_a_changed_input_rebuilds_under_a_new_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = tmp_path / "images"
    shutil.copytree(images.SOURCES, sources)
    cache = tmp_path / "cache"
    monkeypatch.setattr(images, "SOURCES", sources)
    monkeypatch.setenv("RETENTION_CACHE_DIR", str(cache))
    try:
        first = images.build(["pause"])["pause"]
        assert not first.cached and first.archive.is_file()
        assert first.archive.is_relative_to(cache)
        again = images.build(["pause"])["pause"]
        assert again.cached and again.ref == first.ref and again.digest == first.digest

        source = sources / "pause" / "pause.c"
        source.write_text(source.read_text() + "/* a change */\n")
        changed = images.build(["pause"])["pause"]
        assert not changed.cached
        assert changed.ref != first.ref and changed.input_hash != first.input_hash
        assert changed.archive.is_file() and first.archive.is_file()
        assert mounts_under(cache) == []
    finally:
        unmount_all_under(cache)
        shutil.rmtree(cache, ignore_errors=True)
