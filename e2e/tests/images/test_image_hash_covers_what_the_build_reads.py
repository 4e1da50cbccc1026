"""The image cache key: it changes with every input of a build and with nothing else.

Pure tests (no buildah, no containerd): the COPY/ADD parser, the file hash and
the combined key, and the project's own Dockerfiles parsed as the build reads them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import image_inputs, images


def test_copy_and_add_sources_are_read_in_every_form() -> None:
    dockerfile = """\
FROM base AS build
# COPY commented/out.txt /nowhere
COPY pyproject.toml uv.lock ./
COPY --chown=1:1 contract/pkg/ \\
     /src/pkg/
ADD ["rootfs.tar", "/"]
COPY --from=build /opt/venv /opt/venv
RUN echo COPY not/an/instruction
"""
    assert image_inputs.context_sources(dockerfile) == [
        "pyproject.toml",
        "uv.lock",
        "contract/pkg/",
        "rootfs.tar",
    ]


@pytest.mark.parametrize("line", ["COPY onlyone", "COPY src/*.py /dst/"])
def test_a_copy_the_hash_cannot_follow_is_refused(line: str) -> None:
    with pytest.raises(ValueError, match="COPY"):
        image_inputs.context_sources(f"FROM scratch\n{line}\n")


def _tree(root: Path) -> Path:
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("A = 1\n")
    (root / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\x00")
    (root / "top.txt").write_text("top\n")
    return root


def test_file_hash_changes_with_content_names_and_executable_bits(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    first = image_inputs.hash_files(root, ["pkg/", "top.txt"])
    assert image_inputs.hash_files(root, ["top.txt", "pkg/"]) == first

    (root / "pkg" / "a.py").write_text("A = 2\n")
    second = image_inputs.hash_files(root, ["pkg/", "top.txt"])
    assert second != first

    (root / "pkg" / "b.py").write_text("")
    third = image_inputs.hash_files(root, ["pkg/", "top.txt"])
    assert third != second

    (root / "top.txt").chmod(0o755)
    assert image_inputs.hash_files(root, ["pkg/", "top.txt"]) != third


def test_file_hash_ignores_bytecode_and_refuses_a_missing_path(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    before = image_inputs.hash_files(root, ["pkg/"])
    (root / "pkg" / "__pycache__" / "b.cpython-311.pyc").write_bytes(b"\x01")
    (root / "pkg" / "stray.pyc").write_bytes(b"\x02")
    assert image_inputs.hash_files(root, ["pkg/"]) == before
    with pytest.raises(FileNotFoundError, match="missing"):
        image_inputs.hash_files(root, ["missing"])


def _key(
    dockerfile: str = "FROM scratch\n",
    context_hash: str = "c",
    recipe: dict[str, str] | None = None,
    base_hash: str | None = None,
) -> str:
    return image_inputs.input_hash(
        dockerfile=dockerfile,
        context_hash=context_hash,
        recipe=recipe if recipe is not None else {"release": "bookworm"},
        base_hash=base_hash,
    )


def test_the_key_changes_with_the_dockerfile_recipe_and_base() -> None:
    first = _key()
    assert _key() == first
    assert _key(dockerfile="FROM scratch\nUSER 1\n") != first
    assert _key(context_hash="d") != first
    assert _key(recipe={"release": "trixie"}) != first
    assert _key(base_hash="b") != first


def test_each_image_hashes_exactly_the_files_its_dockerfile_copies() -> None:
    sources = {
        name: image_inputs.context_sources(spec.dockerfile.read_text())
        for name, spec in images._specs().items()
    }
    assert sources["operator"] == [
        "pyproject.toml",
        "uv.lock",
        "contract/retention_contract/",
        "operator/retention_operator/",
    ]
    assert sources["workloads"] == [
        "pyproject.toml",
        "uv.lock",
        "contract/retention_contract/",
        "workloads/retention_workloads/",
    ]
    assert sources["base"] == ["rootfs.tar"]
    assert sources["pause"] == ["pause"]
    assert sources["redis"] == sources["pgbouncer"] == []


def test_images_are_built_bases_first_and_unknown_names_are_refused() -> None:
    specs = images._specs()
    assert images._closure(["workloads", "pause"], specs) == ["base", "pause", "workloads"]
    assert images._closure(["pause"], specs) == ["pause"]
    with pytest.raises(ValueError, match="unknown image 'nginx'"):
        images._closure(["nginx"], specs)
