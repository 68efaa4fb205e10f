"""Reading a YAML configuration file into a pydantic model, with problems that point at a line.

A configuration file is parsed twice: once into plain data (``yaml.safe_load``) for pydantic, and once into
YAML's node tree (``yaml.compose``), which keeps the line of every key and value. A pydantic error location
(``("phases", 2, "rules", 0, "contnet_type")``) is walked down that tree to find the line and to write the
path the way the file spells it (``phases[2].rules[0]``).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Self, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator

from journeylens.errors import ConfigError

Loc = tuple[str | int, ...]

#: context key telling a model's own validator to leave cross-field checks to the loader (which can
#: point them at a line); see ``parse_config``
_DEFER_CROSS_CHECKS = "journeylens_defer_cross_checks"

#: the file-name prefix of built-in journey models, which share the builtin/ folder with the phase models
JOURNEY_PREFIX = "journeys-"

_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def check_name(value: str) -> str:
    """A phase or journey-type name: an identifier, as it ends up in columns and charts."""
    if not _NAME_PATTERN.fullmatch(value):
        raise ValueError(f"expected a name of letters, digits and _ that starts with a letter, got {value!r}")
    return value


def builtin_dir() -> Path:
    """The folder of the built-in phase and journey models."""
    return Path(str(resources.files("journeylens.journeys.models") / "builtin"))


def is_path(value: str | Path) -> bool:
    """A ``Path``, or a string ending in .yaml / .yml or holding a path separator, names a file."""
    if isinstance(value, Path):
        return True
    return value.endswith((".yaml", ".yml")) or "/" in value or "\\" in value


def loc_text(loc: Loc) -> str:
    """A location as a path: ("phases", 2, "name") -> phases[2].name."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a configuration file: where, and what was expected."""

    source: str  # the file as the user named it, or "<string>"
    line: int | None  # 1-based; None when the file could not be read at all
    path: str  # the field, as the file spells it: phases[2].rules[0]; "" for the whole file
    message: str
    code: str = "invalid_config"

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


C = TypeVar("C", bound="ConfigModel")


@dataclass(frozen=True)
class CrossProblem:
    """A problem found after pydantic validation (an unknown phase name, a duplicate), with its location."""

    loc: Loc
    message: str
    code: str


def config_error(problems: Sequence[Problem]) -> ConfigError:
    """One ConfigError carrying every problem, one per line."""
    return ConfigError("\n".join(str(p) for p in problems))


class ConfigModel(BaseModel):
    """Base of a configuration file's top-level model: strict fields, and checks across fields.

    ``cross_problems`` finds what pydantic's per-field validation cannot (duplicate names, references to
    names that do not exist). Built in Python, the model raises on them; read from a file, the loader
    reports them with their lines instead.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def cross_problems(self) -> list[CrossProblem]:
        return []

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Self:
        if info.context and info.context.get(_DEFER_CROSS_CHECKS):
            return self
        problems = self.cross_problems()
        if problems:
            raise ValueError("; ".join(f"{loc_text(p.loc)}: {p.message}" for p in problems))
        return self


def parse_text(model: type[C], text: str, source: str) -> C:
    """A ``model`` from YAML ``text``; raises ConfigError naming ``source`` and the line of each problem."""
    result, problems = parse_config(model, text, source)
    if problems or result is None:
        raise config_error(problems)
    return result


def load_model(
    model: type[C],
    name_or_path: Any,
    *,
    kind: str,
    builtin_names: Sequence[str],
    load_builtin: Any,
) -> C:
    """A model given as itself, a YAML file, or a built-in name (``kind`` names it in errors).

    A ``Path``, or a string ending in ``.yaml`` / ``.yml`` or holding a path separator, is a file;
    anything else is a built-in name.
    """
    if isinstance(name_or_path, model):
        return name_or_path
    if is_path(name_or_path):
        return load_file(model, name_or_path)
    name = str(name_or_path)
    if name not in builtin_names:
        raise ConfigError(
            f"unknown {kind} '{name}'; expected one of {', '.join(builtin_names)} or the path of a .yaml file",
            code=f"unknown_{kind.replace(' ', '_')}",
        )
    return load_builtin(name)


def load_file(model: type[C], path: str | Path) -> C:
    """A ``model`` from a YAML file; raises ConfigError naming the file and the line of each problem."""
    text = _read(path)
    if isinstance(text, Problem):
        raise config_error([text])
    return parse_text(model, text, str(path))


def validate_file(model: type[C], path: str | Path) -> list[Problem]:
    """Every problem in a YAML file for ``model`` (an empty list when it is valid)."""
    text = _read(path)
    if isinstance(text, Problem):
        return [text]
    return parse_config(model, text, str(path))[1]


def _read(path: str | Path) -> str | Problem:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return Problem(str(path), None, "", "no such file", "unusable_file")
    except (OSError, UnicodeDecodeError) as exc:
        return Problem(str(path), None, "", f"cannot be read: {exc}", "unusable_file")


def parse_config(model: type[C], text: str, source: str) -> tuple[C | None, list[Problem]]:
    """Parse YAML ``text`` into ``model``; return the model (None if invalid) and every problem found."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        last_line = max(1, len(text.splitlines()))
        line = min(mark.line + 1, last_line) if mark is not None else 1
        what = (exc.problem or exc.context or "cannot be parsed").replace(
            "'<stream end>'", "the end of the file"
        )
        return None, [Problem(source, line, "", f"invalid YAML: {what}", "invalid_yaml")]
    except yaml.YAMLError as exc:
        return None, [Problem(source, 1, "", f"invalid YAML: {exc}", "invalid_yaml")]
    if node is None or not isinstance(data, dict):
        got = "an empty file" if node is None else f"a {type(data).__name__}"
        line = 1 if node is None else node.start_mark.line + 1
        return None, [Problem(source, line, "", f"expected a mapping of fields, got {got}", "invalid_config")]

    problems = _duplicate_keys(node, source)
    try:
        result = model.model_validate(data, context={_DEFER_CROSS_CHECKS: True})
    except ValidationError as exc:
        problems += [_from_pydantic(model, err, node, source) for err in exc.errors()]
        return None, _by_line(problems)
    for cross in result.cross_problems():
        line, path = locate(node, cross.loc)
        problems.append(Problem(source, line, path, cross.message, cross.code))
    return (None if problems else result), _by_line(problems)


def _by_line(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line or 0)


def locate(root: yaml.Node, loc: Loc) -> tuple[int, str]:
    """The line (1-based) of the deepest node ``loc`` reaches, and the path as the file spells it.

    Integer steps that the file does not have (a single mapping or name that the model wraps into a
    list of one) are skipped; a key the file lacks ends the walk at its mapping's line.
    """
    node: yaml.Node = root
    line = root.start_mark.line + 1
    parts: list[str] = []
    for i, key in enumerate(loc):
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            for key_node, value_node in node.value:
                if key_node.value == key:
                    parts.append(key)
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                parts.extend(str(k) if isinstance(k, str) else f"[{k}]" for k in loc[i:])
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
            parts.append(f"[{key}]")
            node = node.value[key]
            line = node.start_mark.line + 1
        elif isinstance(key, int) and key == 0:
            continue  # a single value the model wrapped into a list
        else:
            parts.extend(str(k) if isinstance(k, str) else f"[{k}]" for k in loc[i:])
            break
    return line, _join(parts)


def _join(parts: list[str]) -> str:
    out = ""
    for part in parts:
        out += part if part.startswith("[") or not out else "." + part
    return out


def _duplicate_keys(node: yaml.Node, source: str, parts: tuple[str, ...] = ()) -> list[Problem]:
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                problems.append(
                    Problem(
                        source,
                        key_node.start_mark.line + 1,
                        _join(list(parts)),
                        f"duplicate key '{key}'; each field may appear once",
                        "duplicate_key",
                    )
                )
            seen.add(key)
            problems += _duplicate_keys(value_node, source, (*parts, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += _duplicate_keys(item, source, (*parts, f"[{i}]"))
    return problems


def _from_pydantic(model: type[BaseModel], err: Any, root: yaml.Node, source: str) -> Problem:
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        line, _ = locate(root, loc)
        _, path = locate(root, loc[:-1])
        allowed = ", ".join(_field_names(_model_at(model, loc[:-1])))
        return Problem(
            source, line, path, f"unknown field '{loc[-1]}'; expected one of {allowed}", "unknown_field"
        )
    if kind == "missing":
        line, path = locate(root, loc[:-1])
        return Problem(source, line, path, f"missing field '{loc[-1]}'", "missing_field")
    line, path = locate(root, loc)
    msg: str = err["msg"]
    ctx = err.get("ctx") or {}
    if kind == "greater_than_equal":
        msg = f"expected at least {_num(ctx.get('ge'))}, got {_show(err.get('input'))}"
    elif kind == "greater_than":
        msg = f"expected more than {_num(ctx.get('gt'))}, got {_show(err.get('input'))}"
    elif kind in _EXPECTED:
        msg = f"expected {_EXPECTED[kind]}, got {_show(err.get('input'))}"
    elif kind in ("value_error", "assertion_error"):
        msg = msg.split(", ", 1)[1] if ", " in msg else msg
    elif msg.startswith("Input should be "):
        msg = f"expected {msg[len('Input should be ') :]}, got {_show(err.get('input'))}"
    elif msg.startswith("List should have at least"):
        msg = f"expected at least {msg.split('at least ', 1)[1].split(' after', 1)[0]}, got {_show(err.get('input'))}"
    return Problem(source, line, path, msg, "invalid_value")


_EXPECTED = {
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "list_type": "a list",
    "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
    "dict_type": "a mapping",
}


def _num(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _show(value: Any) -> str:
    return "nothing (null)" if value is None else repr(value)


def _field_names(cls: type[BaseModel] | None) -> list[str]:
    if cls is None:
        return []
    return [info.alias or name for name, info in cls.model_fields.items()]


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional off a type annotation."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class found at ``loc`` inside ``model`` (None if the walk leaves the models)."""
    tp: Any = model
    for key in loc:
        tp = _unwrap(tp)
        if isinstance(key, str) and isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = {info.alias or name: info for name, info in tp.model_fields.items()}
            if key not in fields:
                return None
            tp = fields[key].annotation
        elif isinstance(key, int) and typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        else:
            return None
    tp = _unwrap(tp)
    if typing.get_origin(tp) is list:  # a single mapping wrapped into a list of one
        tp = _unwrap(typing.get_args(tp)[0])
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None
