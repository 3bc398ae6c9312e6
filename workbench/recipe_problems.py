"""Recipe problems a person can act on: path, YAML line, what was found, what was expected.

Pydantic finds type and structure errors; `reference_problems` finds what no
single field can know (a step at a party the recipe does not have, a party
drawing from a dataset that does not exist). Both run on every load, so one
`workbench validate` lists everything wrong at once.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from difflib import get_close_matches
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from workbench.errors import WorkbenchError
from workbench.parties import COORDINATOR, Role

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    loc: Loc
    message: str
    line: int | None = None

    @property
    def path(self) -> str:
        return format_path(self.loc)

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {self.path or '(recipe)'}: {self.message}"


class RecipeError(WorkbenchError, ValueError):
    """The recipe is not valid; `problems` lists every issue found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(problem.render(source) for problem in problems))


def format_path(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]|\[([^\[\]]+)\]")


def parse_path(text: str) -> Loc:
    """`steps[1].params.rounds` -> ("steps", 1, "params", "rounds"); `steps[fl_dp].rounds` -> ("steps", "fl_dp", "rounds").

    A bracketed name stays a string: `recipe.resolve_step_names` turns it into the index of the step of that name, so a
    command line keeps working when a step is inserted before the one it sets.
    """
    loc: list[str | int] = []
    position = 0
    while position < len(text):
        if text[position] == "." and loc:
            position += 1
        match = _PATH_TOKEN.match(text, position)
        if not match:
            raise ValueError(f"cannot read path {text!r} at {text[position:]!r}; write it like steps[1].params.rounds or steps[evaluate].params.models")
        name, index, named = match.groups()
        loc.append(int(index) if index is not None else name if name is not None else named)
        position = match.end()
    if not loc:
        raise ValueError("empty path")
    return tuple(loc)


# --- structure and types, from pydantic -------------------------------------------------------


def problems_from_validation(error: ValidationError, model: type[BaseModel]) -> list[Problem]:
    problems = []
    for detail in error.errors(include_url=False):
        raw_loc = tuple(detail["loc"])
        loc = _strip_union_tags(raw_loc, model)
        message = _message(detail, raw_loc, model)
        if loc and loc[-1] == "[key]":  # pydantic's marker for a bad mapping key, e.g. a party's name
            loc, message = loc[:-1], f"invalid name {loc[-2]!r}: {detail['msg']}"
        problems.append(Problem(loc, message))
    return problems


def _message(detail: Mapping[str, Any], loc: Loc, model: type[BaseModel]) -> str:
    """`loc` still holds pydantic's union tags here: they pick the model whose fields to suggest."""
    kind, got = detail["type"], detail.get("input")
    if kind == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        hint = ""
        if allowed:
            hint = did_you_mean(str(loc[-1]), allowed) or f"; expected one of: {', '.join(allowed)}"
        return f"unknown field {loc[-1]!r}{hint}"
    if kind == "missing":
        return f"required field {loc[-1]!r} is missing"
    if kind == "union_tag_invalid":
        tag, expected = detail["ctx"]["discriminator"].strip("'"), detail["ctx"]["expected_tags"].replace("'", "").split(", ")
        wrote = detail["ctx"]["tag"]
        return f"unknown {tag} {wrote!r}{did_you_mean(wrote, expected)}; {tag}s: {', '.join(expected)}"
    return f"{detail['msg']}; got {_show(got)}"


def did_you_mean(wrote: str, names: list[str]) -> str:
    close = get_close_matches(wrote, names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str] | None:
    """Field names of the model found at `loc`, to suggest the right spelling of an unknown field."""
    current: Any = model
    for part in loc:
        current = _child_type(current, part)
        if current is None:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def _strip_union_tags(loc: Loc, model: type[BaseModel]) -> Loc:
    """Pydantic puts the union member's tag in a location (steps.1.local_train.params); users never wrote it."""
    kept: list[str | int] = []
    current: Any = model
    for part in loc:
        options = _union_members(current)
        if options and isinstance(part, str) and part in options:
            current = options[part]
            continue
        kept.append(part)
        current = _child_type(current, part) if current is not None else None
    return tuple(kept)


def _union_members(annotation: Any) -> dict[str, Any]:
    annotation = _strip_annotated(annotation)
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return {}
    members = {}
    for member in typing.get_args(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel) and "kind" in member.model_fields:
            for tag in typing.get_args(member.model_fields["kind"].annotation):
                members[tag] = member
    return members


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _unwrap(annotation: Any) -> Any:
    """Through Annotated, and from Optional[X] to X."""
    annotation = _strip_annotated(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(annotation) if m is not type(None)]
        return _strip_annotated(members[0]) if len(members) == 1 else annotation
    return annotation


def _child_type(annotation: Any, part: str | int) -> Any:
    members = _union_members(annotation)
    if isinstance(part, str) and part in members:
        return members[part]
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if isinstance(part, int) and origin in (list, tuple, Sequence):
        return typing.get_args(annotation)[0]
    if isinstance(part, str) and origin in (dict, Mapping):
        return typing.get_args(annotation)[1]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and part in annotation.model_fields:
        return annotation.model_fields[part].annotation
    return None


# --- cross-references, on the raw data so they are found even when types are wrong ------------


def reference_problems(raw: Mapping[str, Any], registry: Mapping[str, Any]) -> list[Problem]:
    parties, datasets = _field(raw, "parties", dict), _field(raw, "datasets", dict)
    problems = [*_party_problems(parties, datasets)]
    steps = _field(raw, "steps", list)
    names: dict[str, int] = {}
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        step_class = registry.get(str(step.get("kind")))
        if isinstance(step.get("name"), str):
            if step["name"] in names:
                problems.append(Problem(("steps", index, "name"), f"step name {step['name']!r} is already used by steps[{names[step['name']]}]"))
            names.setdefault(step["name"], index)
        problems.extend(_at_problems(index, step, step_class, parties))
    return problems


def _field(raw: Mapping[str, Any], key: str, kind: type) -> Any:
    """A top-level section if it has the right shape; otherwise empty (its shape is pydantic's to report)."""
    value = raw.get(key)
    return value if isinstance(value, kind) else kind()


def _party_problems(parties: Mapping[str, Any], datasets: Mapping[str, Any]) -> list[Problem]:
    from workbench.data.sources import DatasetSource

    problems = []
    if COORDINATOR in parties:
        problems.append(Problem(("parties", COORDINATOR), f"{COORDINATOR!r} is reserved for the researcher running the workbench; name the party otherwise"))
    for name, party in parties.items():
        data = party.get("data") if isinstance(party, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("dataset"), str):
            continue
        loc: Loc = ("parties", name, "data")
        if data["dataset"] not in datasets:
            problems.append(Problem((*loc, "dataset"), f"unknown dataset {data['dataset']!r}; {_known('datasets', datasets)}"))
            continue
        try:
            source = TypeAdapter(DatasetSource).validate_python(datasets[data["dataset"]])
        except ValidationError:
            continue  # reported where the dataset is defined
        parts = source.part_names()
        part = data.get("part")
        if part is None and len(parts) > 1:
            problems.append(Problem((*loc, "part"), f"dataset {data['dataset']!r} has several parts; choose one of: {', '.join(parts)}"))
        elif part is not None and part not in parts:
            problems.append(Problem((*loc, "part"), f"dataset {data['dataset']!r} has no part {part!r}; its parts: {', '.join(parts)}"))
    return problems


def _at_problems(index: int, step: Mapping[str, Any], step_class: Any, parties: Mapping[str, Any]) -> list[Problem]:
    roles = {name: party.get("role") for name, party in parties.items() if isinstance(party, dict)}
    accepted = [role.value for role in step_class.roles] if step_class else None
    at = step.get("at")
    problems = []
    if isinstance(at, list):
        for position, party in enumerate(at):
            loc: Loc = ("steps", index, "at", position)
            if not isinstance(party, str):
                continue  # pydantic reports it: `at` is a list of party names
            if party not in parties:
                problems.append(Problem(loc, f"unknown party {party!r}{did_you_mean(party, list(parties))}; {_known('parties', parties)}"))
            elif accepted and roles.get(party) in {r.value for r in Role} and roles[party] not in accepted:
                problems.append(Problem(loc, f"step {step['kind']!r} runs at parties with role {' or '.join(accepted)}; {party!r} is {roles[party]!r}"))
    elif at is None and accepted and parties and not any(role in accepted for role in roles.values()):
        problems.append(Problem(("steps", index), f"step {step['kind']!r} runs at parties with role {' or '.join(accepted)}, and this recipe has none"))
    return problems


def _known(what: str, names: Mapping[str, Any]) -> str:
    return f"{what} in this recipe: {', '.join(names)}" if names else f"this recipe defines no {what}"


# --- YAML lines ---------------------------------------------------------------------------------


def locate_lines(text: str, problems: list[Problem]) -> list[Problem]:
    """Attach to each problem the line of the deepest YAML node its path reaches."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return problems
    return [replace(problem, line=problem.line or _line_of(root, problem.loc)) for problem in problems]


def _line_of(node: yaml.Node | None, loc: Loc) -> int | None:
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                return line
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
