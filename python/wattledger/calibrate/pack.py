"""Writing the calibrated pack: the input pack plus the calibrated entries, as TOML.

The input pack is read with ``tomllib`` and written back by the small emitter below (the
values a pack may hold are few: strings, numbers, booleans, arrays of strings, tables and the
coefficients' arrays of tables), so nothing the input pack says is lost but its comments.
What is written is then parsed by the engine before it replaces the output file: a pack the
engine would refuse is never left behind.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wattledger import _core, formatting

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _string(k)


def _string(s: str) -> str:
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"a pack number must be finite, found {v}")
        # repr is the shortest text that reads back as the same double; TOML needs a dot or
        # an exponent to keep it a float.
        text = repr(v)
        return text if any(c in text for c in ".eE") else text + ".0"
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to a pack")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)


def _emit(table: Mapping[str, Any], path: list[str], out: list[str]) -> None:
    """A table's plain keys, then its sub-tables and arrays of tables, depth first."""
    plain = [(k, v) for k, v in table.items() if not isinstance(v, Mapping) and not _is_table_array(v)]
    for k, v in plain:
        out.append(f"{_key(k)} = {_value(v)}")
    for k, v in table.items():
        if isinstance(v, Mapping):
            sub = [*path, k]
            # A table with only sub-tables needs no header of its own.
            if any(not isinstance(x, Mapping) and not _is_table_array(x) for x in v.values()) or not v:
                out.append("")
                out.append("[" + ".".join(_key(p) for p in sub) + "]")
            _emit(v, sub, out)
        elif _is_table_array(v):
            for item in v:
                out.append("")
                out.append("[[" + ".".join(_key(p) for p in [*path, k]) + "]]")
                _emit(item, [*path, k], out)


def dumps(pack: Mapping[str, Any], header: str = "") -> str:
    """TOML text of ``pack`` (a dict as ``tomllib`` reads one)."""
    out = [f"# {line}" if line else "#" for line in header.splitlines()]
    _emit(pack, [], out)
    return "\n".join(out).lstrip("\n") + "\n"


def read_pack(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


def merge(
    pack: dict[str, Any],
    coefficients: Mapping[tuple[str, str], Mapping[str, Any]],
    utilization: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """``pack`` with calibrated entries: per (model, hardware) a coefficient entry (one for
    that exact hardware replaces the model's existing one; other entries, ``"*"`` included,
    are kept), per hardware its ``utilization`` and ``calibrated`` provenance."""
    models = pack.setdefault("models", {})
    for (model, hardware), entry in coefficients.items():
        m = models.setdefault(model, {})
        kept = [c for c in m.get("coefficients", []) if c.get("hardware") != hardware]
        m["coefficients"] = [*kept, dict(entry)]
    hw_table = pack.setdefault("hardware", {})
    for hardware, values in utilization.items():
        hw_table[hardware].update(values)
    if not models:
        del pack["models"]
    if not hw_table:
        del pack["hardware"]
    return pack


def write_pack(path: Path, text: str) -> _core.Config:
    """Parse ``text`` with the engine (its strict parser: the pack must be usable as written),
    then write it atomically (a temporary file renamed over ``path``)."""
    config = _core.Config.from_toml(text, origin=str(path))
    formatting.write_atomically(path, text)
    return config
