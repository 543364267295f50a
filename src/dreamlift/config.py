"""Typed dataclass configs, loaded strictly from YAML, with dotted overrides.

Every component declares its settings as a dataclass whose fields carry a docstring each. A run's config is
built in three layers, each checked against the dataclasses:

1. the dataclass defaults,
2. a preset (a name from ``dreamlift/configs`` or a path to a YAML file); a preset may start with
   ``base: NAME`` (another preset's name or a path), and then holds only the keys that differ from it,
3. dotted overrides from the command line, e.g. ``guidance.scale=50`` or ``camera.fov_range=[40,60]``.

Any key that is not a field is an error naming its dotted path; so is a value of the wrong type. Values in
overrides are parsed as YAML, so ``true``, ``3``, ``0.5`` and ``[1, 2]`` mean what they look like.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from dreamlift.errors import UsageError, first_line

_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
"""Numbers in exponent notation, which YAML 1.1 leaves as strings unless the mantissa has a dot."""

PRESET_DIR = Path(__file__).parent / "configs"
"""Folder of the YAML presets shipped with the package."""

BASE_KEY = "base"
"""The key of a preset that names the preset it inherits from."""

ConfigT = TypeVar("ConfigT")


def preset_names() -> list[str]:
    """Names of the shipped presets, e.g. ``["dreamfusion"]``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""yaml.safe_load's loader, in C where PyYAML was built with libyaml (8× faster on a run's config.yaml)."""


def read_preset(name_or_path: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a preset by name (``dreamfusion``) or by path to a YAML file, merged onto the preset its ``base`` key
    names (if any); returns the mapping."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") or path.exists()):
        path = PRESET_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise UsageError(
                f"unknown config preset '{name_or_path}' (known: {', '.join(preset_names())}; "
                "or give a path to a YAML file)"
            )
    if not path.is_file():
        raise UsageError(f"config file not found: {path}")
    try:
        data = yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
    except yaml.YAMLError as err:
        raise UsageError(f"config file {path} is not valid YAML: {first_line(err)}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a mapping of keys to values")
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str) or str(path.resolve()) in _seen:
        raise UsageError(f"config file {path}: '{BASE_KEY}' must name another preset, without a cycle")
    return deep_merge(read_preset(base, (*_seen, str(path.resolve()))), data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b.c=value"`` into ``(["a", "b", "c"], parsed_value)``; the value is parsed as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"override '{text}' must look like key.subkey=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def merge_override(data: dict[str, Any], keys: list[str], value: Any) -> None:
    """Set ``data[k0][k1]...[kn] = value`` in place, creating mappings on the way."""
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise UsageError(f"override {'.'.join(keys)}: '{key}' is a value, not a section")
        node = child
    node[keys[-1]] = value


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``update``, merging nested mappings key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(
    cls: type[ConfigT], preset: str | None = None, overrides: list[str] = (), values: dict[str, Any] | None = None
) -> ConfigT:
    """Build a ``cls`` config from its defaults, an optional preset, dotted overrides (``"a.b=1"``, parsed as
    YAML) and then ``values`` (dotted key → Python value, e.g. from command-line flags); strictly checked."""
    data: dict[str, Any] = read_preset(preset) if preset else {}
    for text in overrides:
        keys, value = parse_override(text)
        merge_override(data, keys, value)
    for key, value in (values or {}).items():
        merge_override(data, key.split("."), value)
    return from_dict(cls, data)


def from_dict(cls: type[ConfigT], data: dict[str, Any], path: str = "") -> ConfigT:
    """Construct dataclass ``cls`` from a mapping; unknown keys and wrong types raise :class:`UsageError`."""
    if not isinstance(data, dict):
        raise UsageError(f"config section '{path or '<root>'}' must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        where = f"{path}." if path else ""
        raise UsageError(f"unknown config key '{where}{unknown[0]}' (valid keys here: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{path}.{name}" if path else name)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise UsageError(f"config '{path or '<root>'}': {err}") from None


def _coerce(hint: Any, value: Any, path: str) -> Any:
    """Check ``value`` against the type ``hint`` and convert YAML lists to tuples; raise on mismatch."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value if value is not None else {}, path)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, path)
            except UsageError as err:
                errors.append(str(err))
        raise UsageError(errors[0])
    if origin is Literal:
        if value not in args:
            raise UsageError(f"config '{path}' must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"config '{path}' must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise UsageError(f"config '{path}' must have {len(args)} items, got {len(value)}")
        return tuple(_coerce(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if hint is float:
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value):
            value = float(value)  # YAML 1.1 reads 1e-3 (no dot in the mantissa) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"config '{path}' must be a number, got {value!r}")
        if not math.isfinite(value):
            raise UsageError(f"config '{path}' must be a finite number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"config '{path}' must be a whole number, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise UsageError(f"config '{path}' must be true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise UsageError(f"config '{path}' must be a string, got {value!r}")
        return value
    raise TypeError(f"config field '{path}' has a type the loader does not support: {hint!r}")


def to_dict(config: Any) -> dict[str, Any]:
    """The config as plain YAML-ready data (tuples become lists); a field whose metadata says ``omit_if_none``
    is left out while it is None (a section that the chosen kind does not use)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {
                f.name: plain(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if not (f.metadata.get("omit_if_none") and getattr(value, f.name) is None)
            }
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(config)


def dump_yaml(config: Any) -> str:
    """The config as YAML text, in field order."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)
