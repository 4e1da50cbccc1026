"""What of a child no longer says what the operator applied: pure functions.

The reconciler applies a child only when its applied-hash differs (see
:mod:`.apply`), which alone would leave a hand edit in place until the next
spec change. :func:`drift` compares the manifest the operator would apply with
the live object, field by field, over the fields the manifest sets, and
returns the paths that differ; the reconciler applies again when the list is
not empty, which puts those fields back (server-side apply with force takes
them from whoever changed them) and leaves every field the manifest does not
set, such as another field manager's labels, as it is.

The comparison follows how the API server stores what it was given, so that
an untouched child shows no drift and a no-op reconcile still writes nothing:

- maps: only the keys the manifest sets are compared; others may be added;
- lists of objects with a merge key (``name``, ``mountPath``, ``uid`` ...):
  matched by key, and items another manager added are allowed; other lists
  are atomic (server-side apply replaces them whole) and compared in full;
- a field the manifest sets to an empty value (``{}``, ``[]``, ``""``) may be
  absent from the stored object, which drops empty values;
- resource quantities compare by value (``0.5`` and ``500m``, ``1024Mi`` and
  ``1Gi``), as the server rewrites them in canonical form.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

Manifest = dict[str, Any]

# List items are matched by the first of these keys they carry (the merge keys
# of the lists the builders write: containers, env, volumes, ports, mounts,
# owner references, spread constraints).
MERGE_KEYS = ("name", "mountPath", "uid", "containerPort", "topologyKey", "ip")
# Maps whose values are resource quantities.
_QUANTITY_PARENTS = frozenset({"requests", "limits", "capacity"})
_QUANTITY_KEYS = frozenset({"sizeLimit", "storage"})
_SUFFIXES = {
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$"
)


def quantity(value: object) -> Decimal | None:
    """The value of a Kubernetes quantity (``500m``, ``1Gi``, ``2``, ``1e3``); None if not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    try:
        if suffix[:1] in ("e", "E"):
            return Decimal(number + suffix)
        return Decimal(number) * _SUFFIXES[suffix]
    except (InvalidOperation, KeyError):
        return None


def _empty(value: object) -> bool:
    return value is None or value == {} or value == [] or value == ""


def _item_key(item: object) -> tuple[str, object] | None:
    if not isinstance(item, dict):
        return None
    for key in MERGE_KEYS:
        if key in item:
            return key, item[key]
    return None


def _label(item_key: tuple[str, object]) -> str:
    return f"[{item_key[1]}]" if item_key[0] == "name" else f"[{item_key[0]}={item_key[1]}]"


def _scalar_equal(want: object, have: object, *, key: str, parent: str) -> bool:
    if want == have and type(want) is type(have):
        return True
    if isinstance(want, bool) or isinstance(have, bool):
        return False
    if isinstance(want, int | float) and isinstance(have, int | float):
        return want == have
    if parent in _QUANTITY_PARENTS or key in _QUANTITY_KEYS:
        a, b = quantity(want), quantity(have)
        return a is not None and a == b
    return False


def _diff(want: object, have: object, path: str, key: str, parent: str, out: list[str]) -> None:
    if isinstance(want, dict):
        if not isinstance(have, dict):
            if not (_empty(want) and have is None):
                out.append(path)
            return
        for k, v in want.items():
            sub = f"{path}.{k}" if path else str(k)
            if k not in have:
                if not _empty(v):
                    out.append(sub)
                continue
            _diff(v, have[k], sub, str(k), key, out)
        return
    if isinstance(want, list):
        if not isinstance(have, list):
            if not (_empty(want) and have is None):
                out.append(path)
            return
        keys = [_item_key(item) for item in want]
        if want and all(k is not None for k in keys):
            by_key = {_item_key(item): item for item in have}
            for item_key, item in zip(keys, want, strict=True):
                assert item_key is not None
                sub = f"{path}{_label(item_key)}"
                if item_key not in by_key:
                    out.append(sub)
                else:
                    _diff(item, by_key[item_key], sub, key, parent, out)
            return
        if len(want) != len(have):
            out.append(path)
            return
        for index, (w, h) in enumerate(zip(want, have, strict=True)):
            _diff(w, h, f"{path}[{index}]", key, parent, out)
        return
    if have is None and _empty(want):
        return
    if not _scalar_equal(want, have, key=key, parent=parent):
        out.append(path)


def drift(desired: Manifest, live: Manifest) -> list[str]:
    """The paths the manifest sets whose live value differs (empty: nothing to put back).

    ``status`` and the server-owned metadata are never compared: the
    manifest does not set them. Paths read like ``spec.template.spec.containers[api].image``.
    """
    out: list[str] = []
    for section, want in desired.items():
        if section in ("apiVersion", "kind", "status"):
            continue
        _diff(want, live.get(section), section, section, "", out)
    return out


_VOLATILE_META = frozenset({"resourceVersion", "generation", "managedFields"})


def _content(obj: Manifest) -> tuple[object, ...]:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _VOLATILE_META}
    rest = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return meta, rest


def content_changed(old: Manifest, new: Manifest) -> bool:
    """Whether anything but status and the server's bookkeeping changed between two versions.

    A Deployment's status moving (a rollout, pods becoming ready) is not a
    content change; an edit of its spec, labels or annotations is.
    """
    return _content(old) != _content(new)


# Fields that are (part of) the server's merge key of a list item although the
# item is matched here by its name: Service and container ports, mounts.
_SERVER_KEYS = ("port", "containerPort", "protocol", "mountPath")


def _re_keyed(want: object, have: object) -> bool:
    if not isinstance(want, dict) or not isinstance(have, dict):
        return False
    return any(k in want and have.get(k, want[k]) != want[k] for k in _SERVER_KEYS)


def replacement_patch(desired: Manifest, live: Manifest) -> Manifest | None:
    """A strategic merge patch that replaces each keyed list whose items were re-keyed by hand.

    Server-side apply merges a keyed list by item key, so when someone
    changes the key itself (a Service's port 8080 to 9999), applying the
    manifest adds the old item back beside the edited one, and the API server
    refuses the pair (two ports named ``http``). Replacing such lists whole
    (``$patch: replace``) first lets the apply that follows succeed. Returns
    None when no list of the manifest is missing one of its items.
    """
    patch = _replacing(desired, live)
    return patch if isinstance(patch, dict) else None


def _replacing(want: object, have: object) -> object:
    if isinstance(want, dict):
        have_map = have if isinstance(have, dict) else {}
        fragment = {}
        for key, value in want.items():
            sub = _replacing(value, have_map.get(key))
            if sub is not None:
                fragment[key] = sub
        return fragment or None
    if not isinstance(want, list) or not want:
        return None
    keys = [_item_key(item) for item in want]
    if not all(k is not None for k in keys):
        return None
    by_key = {_item_key(item): item for item in have} if isinstance(have, list) else {}
    if any(
        k not in by_key or _re_keyed(item, by_key[k]) for k, item in zip(keys, want, strict=True)
    ):
        return [{"$patch": "replace"}, *want]
    # Every item is there: a re-keyed list may still sit inside one (a container's ports).
    items = []
    for item_key, item in zip(keys, want, strict=True):
        sub = _replacing(item, by_key[item_key])
        if sub is not None:
            assert isinstance(item, dict) and isinstance(sub, dict)
            items.append({**item, **sub})
    return items or None
