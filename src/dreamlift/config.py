"""Typed dataclass configs, loaded strictly from YAML, with dotted overrides.

Every component declares its settings as a dataclass whose fields carry a docstring each. A run's config is
built in three layers, each checked against the dataclasses:

1. the dataclass defaults,
2. a preset (a name from ``dreamlift/configs`` or a path to a YAML file); a preset may start with
   ``base: NAME`` (another preset's name, or a path, a relative one from the preset's own folder), and then
   holds only the keys that differ from it,
3. dotted overrides from the command line, e.g. ``guidance.scale=50`` or ``camera.fov_range=[40,60]``.

Any key that is not a field is an error naming its dotted path; so is a value of the wrong type. Values in
overrides are parsed as YAML, so ``true``, ``3``, ``0.5`` and ``[1, 2]`` mean what they look like.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from dreamlift.errors import UsageError, first_line

_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
"""Numbers in exponent notation, which YAML 1.1 leaves as strings unless the mantissa has a dot."""

PRESET_DIR = Path(__file__).parent / "configs"
"""Folder of the text3d presets shipped with the package."""

VIDEO_PRESET_DIR = PRESET_DIR / "video"
"""Folder of the text2video presets shipped with the package."""

BASE_KEY = "base"
"""The key of a preset that names the preset it inherits from."""

ConfigT = TypeVar("ConfigT")


def preset_names(folder: Path = PRESET_DIR) -> list[str]:
    """Names of the presets shipped in ``folder``, e.g. ``["dreamfusion", …]``."""
    return sorted(p.stem for p in folder.glob("*.yaml"))


def preset_summary(name: str, folder: Path = PRESET_DIR) -> str:
    """The first line of a shipped preset's opening comment: what it is."""
    first = (folder / f"{name}.yaml").read_text().splitlines()[0]
    return first.removeprefix("#").strip()


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""yaml.safe_load's loader, in C where PyYAML was built with libyaml (8× faster on a run's config.yaml)."""


YAML_SUFFIXES = (".yaml", ".yml")
"""File endings that make a ``base`` (or a batch manifest's ``config``) a path rather than a preset's name."""


def names_a_file(name: str) -> bool:
    """Whether ``name`` is a path to a YAML file rather than a shipped preset's name: it ends in .yaml or .yml, or
    holds a path separator."""
    separators = {"/", os.sep, os.altsep} - {None}
    return Path(name).suffix in YAML_SUFFIXES or any(sep in name for sep in separators)


def preset_path(name: str, folder: Path = PRESET_DIR) -> Path:
    """The file of the preset ``name`` shipped in ``folder``; an unknown name is a UsageError that lists the known
    ones."""
    known = preset_names(folder)
    if name not in known:
        raise UsageError(f"unknown config preset '{name}' (known: {', '.join(known)}; or give a path to a YAML file)")
    return folder / f"{name}.yaml"


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, symlinks resolved, lies inside ``folder`` (also resolved); a path that cannot be resolved
    (a symlink loop) is not."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        return False


def read_preset(name_or_path: str, within: Path | None = None, preset_dir: Path = PRESET_DIR) -> dict[str, Any]:
    """Read a preset by name (``dreamfusion``: a file in ``preset_dir``, the shipped text3d presets by default)
    or by path to a YAML file, merged onto the preset its ``base`` key names (if any); returns the mapping.

    A ``base`` that is a path (see :func:`names_a_file`) is found from the folder of the file that names it when
    it is relative; any other ``base`` is a preset's name in ``preset_dir``. With ``within`` (a folder), a
    relative path is taken from that folder, not the working one, and the YAML files of the whole chain must lie
    inside it, symlinks resolved: a file that came with untrusted input (a batch manifest) may not pull in files from
    elsewhere on the machine. A file that cannot be read or is not UTF-8 is a UsageError naming it.
    """
    path = Path(name_or_path) if within is None else Path(within, name_or_path)
    try:
        is_path = names_a_file(name_or_path) or (within is None and path.exists())
    except OSError as err:  # e.g. a name too long for the file system
        raise UsageError(f"cannot read config file {name_or_path}: {err.strerror or err}") from None
    if not is_path:
        path = preset_path(name_or_path, preset_dir)
    elif within is not None and not is_inside(path, within):
        raise UsageError(f"config '{name_or_path}' must be a preset name or a YAML file in {within}")
    return _read_preset_file(path, (), within, preset_dir)


def _read_preset_file(path: Path, seen: tuple[str, ...], within: Path | None, preset_dir: Path) -> dict[str, Any]:
    """The mapping of the preset file ``path`` merged onto its ``base`` chain (see :func:`read_preset`)."""
    try:
        if not path.is_file():
            raise UsageError(f"config file not found: {path}")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"config file {path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    except OSError as err:
        raise UsageError(f"cannot read config file {path}: {err.strerror or err}") from None
    try:
        data = yaml.load(text, Loader=SAFE_LOADER) or {}
    except yaml.YAMLError as err:
        raise UsageError(f"config file {path} is not valid YAML: {first_line(err)}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a mapping of keys to values")
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str) or not base.strip() or str(path.resolve()) in seen:
        raise UsageError(f"config file {path}: '{BASE_KEY}' must name another preset, without a cycle")
    if not names_a_file(base):
        base_path = preset_path(base, preset_dir)
    else:
        base_path = path.parent / base  # an absolute base stays as it is
        if within is not None and not is_inside(base_path, within):
            raise UsageError(
                f"config file {path}: '{BASE_KEY}: {base}' must be a preset name or a YAML file in {within}"
            )
    return deep_merge(_read_preset_file(base_path, (*seen, str(path.resolve())), within, preset_dir), data)


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
    cls: type[ConfigT],
    preset: str | None = None,
    overrides: list[str] = (),
    values: dict[str, Any] | None = None,
    within: Path | None = None,
    preset_dir: Path = PRESET_DIR,
) -> ConfigT:
    """Build a ``cls`` config from its defaults, an optional preset, dotted overrides (``"a.b=1"``, parsed as
    YAML) and then ``values`` (dotted key → Python value, e.g. from command-line flags); strictly checked.
    ``within``: the folder the preset's files must lie in; ``preset_dir``: where a preset's name is looked up (see
    :func:`read_preset`)."""
    data: dict[str, Any] = read_preset(preset, within, preset_dir) if preset else {}
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
    data = renamed_keys_read(cls, data, path)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        where = f"{path}." if path else ""
        raise UsageError(f"unknown config key '{where}{unknown[0]}' (valid keys here: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        default = fields[name].default_factory
        if dataclasses.is_dataclass(hints[name]) and isinstance(value, dict) and default is not dataclasses.MISSING:
            # A section given in part keeps the rest of its field's default, not of its class: a RefineConfig's
            # dmtet section with one key set keeps the refine stage's grid resolution.
            section = f"{path}.{name}" if path else name
            value = deep_merge(to_dict(default()), renamed_keys_read(hints[name], value, section))
        kwargs[name] = _coerce(hints[name], value, f"{path}.{name}" if path else name)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise UsageError(f"config '{path or '<root>'}': {err}") from None


def renamed_keys_read(cls: type, data: dict[str, Any], path: str) -> dict[str, Any]:
    """``data`` with the keys a config class has renamed (its ``RENAMED_KEYS``, old name → new name) under their
    new names, each said once on stderr: a run folder's config.yaml from an older version still loads."""
    renamed = getattr(cls, "RENAMED_KEYS", {})
    if not any(old in data for old in renamed):
        return data
    data = dict(data)
    for old, new in renamed.items():
        if old in data:
            where = f"{path}." if path else ""
            if new in data:
                raise UsageError(f"config keys '{where}{old}' and '{where}{new}' are one setting; give only '{new}'")
            print(f"warning: config key '{where}{old}' is now '{where}{new}'", file=sys.stderr)
            data[new] = data.pop(old)
    return data


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
