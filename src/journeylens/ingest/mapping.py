"""Column mapping for foreign schemas: ``--map touchpoint=event``, ``--set channel=web``, or a YAML file.

A mapping file looks like::

    columns:            # contract field: column in the input
      person_id: user_id
      touchpoint: event
    constants:          # contract field: value for every row
      channel: web
    timezone: Europe/Amsterdam   # optional: zone of naive timestamps in this source
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from journeylens.errors import ConfigError
from journeylens.schema import CONTRACT_COLUMNS


@dataclass(frozen=True)
class Mapping:
    #: contract field -> input column
    columns: dict[str, str] = field(default_factory=dict)
    #: contract field -> constant value
    constants: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None

    def merged(self, other: Mapping) -> Mapping:
        """This mapping with ``other``'s entries taking precedence."""
        return Mapping(
            columns={**self.columns, **other.columns},
            constants={**self.constants, **other.constants},
            timezone=other.timezone or self.timezone,
        )

    def as_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "constants": self.constants, "timezone": self.timezone}


def _check_targets(names: list[str], where: str, allowed: tuple[str, ...] = CONTRACT_COLUMNS) -> None:
    for name in names:
        if name not in allowed:
            raise ConfigError(f"{where}: unknown field '{name}'; expected one of {', '.join(allowed)}")


def parse_pairs(text: str | list[str] | None, *, option: str) -> dict[str, str]:
    """``"a=b,c=d"`` (or a list of such strings) -> ``{"a": "b", "c": "d"}``, with a clear error."""
    if not text:
        return {}
    parts: list[str] = []
    for chunk in [text] if isinstance(text, str) else text:
        parts.extend(p for p in chunk.split(",") if p.strip())
    pairs: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} {part!r}: expected FIELD=VALUE, e.g. {option} touchpoint=event")
        pairs[key.strip()] = value.strip()
    return pairs


def mapping_from_options(
    map_: str | list[str] | None = None, set_: str | list[str] | None = None, file: str | Path | None = None
) -> Mapping:
    """Build a mapping from the CLI's ``--mapping FILE``, ``--map`` and ``--set`` (later ones win)."""
    base = load_mapping_file(file) if file else Mapping()
    columns = parse_pairs(map_, option="--map")
    constants = parse_pairs(set_, option="--set")
    _check_targets(list(columns), "--map")
    _check_targets(list(constants), "--set")
    return base.merged(Mapping(columns=columns, constants=constants))


def load_mapping_file(file: str | Path) -> Mapping:
    path = Path(file)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: mapping file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return Mapping()
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with keys columns, constants, timezone")
    unknown = set(data) - {"columns", "constants", "timezone"}
    if unknown:
        raise ConfigError(f"{path}: unknown key '{sorted(unknown)[0]}'; expected columns, constants or timezone")
    columns = data.get("columns") or {}
    constants = data.get("constants") or {}
    for key, value in (("columns", columns), ("constants", constants)):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: '{key}' must map contract fields to {'input columns' if key == 'columns' else 'values'}")
    _check_targets(list(columns), f"{path}: columns")
    _check_targets(list(constants), f"{path}: constants")
    timezone = data.get("timezone")
    return Mapping(
        columns={str(k): str(v) for k, v in columns.items()},
        constants={str(k): "" if v is None else str(v) for k, v in constants.items()},
        timezone=str(timezone) if timezone else None,
    )
