"""Loading the methodology pack, the grid tables and column-mapping rules.

The default pack ships inside the package (``wattledger/packs/default.toml``) and is read
through ``importlib.resources`` so it works from a wheel, a zip or an editable install alike.
Its origin string says "built-in" so reports can tell it from a user's file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Literal

from wattledger import _core
from wattledger.errors import ConfigError, UsageError

PathLike = str | os.PathLike[str]

DEFAULT_PACK_ORIGIN = "wattledger/packs/default.toml (built-in)"

#: The coarsest row spacing a grid file may have (``--grid-resolution``).
GridResolution = Literal["hour", "day", "month"]
GRID_RESOLUTIONS: tuple[GridResolution, ...] = ("hour", "day", "month")
#: The adjectives a user may type instead ("--grid-resolution daily").
_RESOLUTION_ADJECTIVES: dict[str, GridResolution] = {"hourly": "hour", "daily": "day", "monthly": "month"}

#: ``{canonical: source}`` or ``["canonical=source", ...]``.
ColumnRules = Mapping[str, str] | Sequence[str] | None


def default_pack_text() -> str:
    """The TOML text of the built-in methodology pack."""
    resource = resources.files("wattledger").joinpath("packs").joinpath("default.toml")
    try:
        return resource.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError(
            "the built-in methodology pack wattledger/packs/default.toml is missing from this "
            "installation; reinstall wattledger or pass --config CONFIG.toml"
        ) from None


def load_config(path: PathLike | _core.Config | None = None) -> _core.Config:
    """Parse and validate a methodology pack; ``None`` means the built-in default pack."""
    if isinstance(path, _core.Config):
        return path
    if path is None:
        return _core.Config.from_toml(default_pack_text(), origin=DEFAULT_PACK_ORIGIN)
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise ConfigError(f"config file {name} does not exist; pass an existing methodology pack (TOML)")
    return _core.Config.from_path(name)


def parse_grid_resolution(text: str) -> GridResolution:
    """``text`` as a grid resolution: ``hour``, ``day`` or ``month``, or its adjective
    (``hourly``, ``daily``, ``monthly``); UsageError otherwise."""
    resolution = _RESOLUTION_ADJECTIVES.get(str(text), text)
    for name in GRID_RESOLUTIONS:
        if resolution == name:
            return name
    raise UsageError(f"grid resolution {resolution!r} is not one of {', '.join(GRID_RESOLUTIONS)}")


def load_grid(
    paths: PathLike | Iterable[PathLike] | _core.Grid = (),
    lifecycle: bool = False,
    resolution: GridResolution = "hour",
) -> _core.Grid:
    """Merge grid intensity files; no files gives an empty grid (every lookup falls back to the
    site's ``fallback_g_per_kwh`` or stays unresolved, and reports say how much).

    Each path is ``FILE`` or ``FILE@ZONE``: the zone of a file without a zone column (the UK
    Carbon Intensity API CSV, ``datetime,g_per_kwh``). ``resolution`` is the coarsest row
    spacing accepted: ``"hour"`` (sub-hourly rows are averaged into their hour); ``"day"`` or
    ``"month"`` apply each daily (monthly) row to every hour of its UTC day (month). What the
    files hold that a run should mention (duplicates averaged, times without an offset, a
    daily grid spread, estimated hours) is on the grid's ``warnings``."""
    if isinstance(paths, _core.Grid):
        return paths
    names = [os.fspath(paths)] if isinstance(paths, str | os.PathLike) else [os.fspath(p) for p in paths]
    resolution = parse_grid_resolution(resolution)
    if not names:
        return _core.Grid.empty()
    # Whether each file exists is checked by the engine, which knows FILE@ZONE.
    return _core.Grid.from_paths(names, lifecycle=lifecycle, resolution=resolution)


def column_rules(columns: ColumnRules) -> list[str]:
    """Normalise column renames to the engine's ``canonical=source`` strings."""
    if columns is None:
        return []
    if isinstance(columns, Mapping):
        rules = [f"{canonical}={source}" for canonical, source in columns.items()]
    elif isinstance(columns, str):
        rules = [columns]
    else:
        rules = list(columns)
    for rule in rules:
        canonical, sep, source = rule.partition("=")
        if not sep or not canonical.strip() or not source.strip():
            raise UsageError(f"column rule {rule!r} is not canonical=source (e.g. --column ts=timestamp)")
    return rules
