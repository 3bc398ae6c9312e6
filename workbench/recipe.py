"""The recipe: a pipeline as data. Schema (pydantic), YAML load and dump, hashing.

A recipe names its parties (each with its private data), its datasets and an
ordered chain of steps. Loading never raises a traceback at the user: every
problem comes back as a `Problem` with its path (`steps[1].params.rounds`),
its YAML line, what was found and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from workbench import safe_yaml
from workbench.chain import chain_problems
from workbench.contracts import Contract
from workbench.data.sources import DatasetSource
from workbench.parties import Role
from workbench.recipe_problems import (
    Problem,
    RecipeError,
    did_you_mean,
    locate_lines,
    parse_path,
    problems_from_validation,
    reference_problems,
)
from workbench.steps import REGISTRY, Step, StepParams

PartyName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64, description="Lowercase letters, digits and _, starting with a letter.")]


class DataRef(BaseModel):
    """Which part of which dataset a party holds, and the table name it has in the party's store."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(description="Name of a dataset under `datasets:`.")
    part: str | None = Field(None, description="Part of that dataset this party holds; may be left out when the dataset has one part.")
    table: str = Field("data", description="Name of the table in the party's store that steps refer to.")


class PartySpec(BaseModel):
    """An organisation in the federation with its own private store."""

    model_config = ConfigDict(extra="forbid")

    role: Role = Field(description="What the party is: hospital, data_provider, aggregator, key_holder or clinic (outside the consortium; may query a model).")
    data: DataRef | None = Field(None, description="The private data this party holds, if any.")
    description: str = Field("", description="Free text shown in the report and the gallery.")


class StepSpec(BaseModel):
    """One step of the chain; `params` is typed by the step's kind."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="The technique, e.g. local_train, evaluate.")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$", description="Unique name in this recipe; defaults to the kind, numbered when a kind repeats.")
    at: list[str] | None = Field(
        None, description="Parties the step runs at; default: those whose role the step accepts (encrypted_inference: clinics and model_owner)."
    )
    params: StepParams = Field(default_factory=StepParams, description="The step's parameters.")


class Recipe(BaseModel):
    """A privacy-preserving ML pipeline over several parties' private data."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Short name; with the hash it names the run.")
    description: str = Field("", description="What the pipeline shows, in a sentence or two.")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed from which every random choice of the run is derived.")
    approvals: Literal["required", "not_required"] = Field(
        "required",
        description="required: the runner opens a party's data only with its owner's signed approval of this recipe's hash "
        "(`workbench approve`); not_required: for teaching and synthetic data, and the report says so in its first lines.",
    )
    datasets: dict[str, DatasetSource] = Field(default_factory=dict, description="Named data sources the parties draw from.")
    parties: dict[PartyName, PartySpec] = Field(min_length=1, description="The organisations, by name.")
    steps: list[StepSpec] = Field(min_length=1, description="The chain of steps, run in order.")

    def step_names(self) -> list[str]:
        """Each step's name: its own, or its kind numbered from the second use on."""
        return default_step_names((spec.kind, spec.name) for spec in self.steps)

    def step_parties(self, spec: StepSpec) -> list[str]:
        """The parties a step runs at: as listed, or those the step chooses by role (`Step.default_parties`)."""
        if spec.at is not None:
            return list(spec.at)
        return REGISTRY[spec.kind](spec.params).default_parties({name: party.role for name, party in self.parties.items()})

    def contracts(self) -> list[tuple[str, Contract]]:
        """Each step's name and contract: what the chain check, the report and the reproducibility grade read of a step."""
        return [(name, REGISTRY[spec.kind](spec.params).contract()) for name, spec in zip(self.step_names(), self.steps)]

    def hash(self) -> str:
        """SHA-256 of the canonical JSON form: equal recipes (after defaults) hash equal whatever their YAML layout."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_yaml(self) -> str:
        """The recipe with every default made explicit, as it ran."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def default_step_names(steps: Iterable[tuple[str, str | None]]) -> list[str]:
    """Names of steps given as (kind, name or None): the one rule for the validated recipe and for a raw one, so that
    `--set steps[NAME]...` finds the step the report and the runs list call NAME."""
    names, seen = [], dict[str, int]()
    for kind, name in steps:
        seen[kind] = seen.get(kind, 0) + 1
        names.append(name or (kind if seen[kind] == 1 else f"{kind}_{seen[kind]}"))
    return names


def _step_spec_model(step: type[Step[Any]]) -> type[StepSpec]:
    params_required = any(field.is_required() for field in step.Params.model_fields.values())
    params_default: Any = ... if params_required else Field(default_factory=step.Params)
    kind_tag: Any = Literal[step.kind]  # built at run time from the step's kind: no static type, so Any to a checker
    return create_model(
        f"{step.__name__}Step",
        __base__=StepSpec,
        __doc__=(step.__doc__ or "").strip(),
        kind=(kind_tag, ...),
        params=(step.Params, params_default),
    )


@cache
def _recipe_model(kinds: tuple[str, ...]) -> type[Recipe]:
    specs = tuple(_step_spec_model(REGISTRY[kind]) for kind in kinds)
    step_type: Any = Annotated[Union[specs], Field(discriminator="kind")] if len(specs) > 1 else specs[0]  # noqa: UP007
    return create_model(
        "Recipe",
        __base__=Recipe,
        __doc__=Recipe.__doc__,
        steps=(list[step_type], Field(min_length=1, description="The chain of steps, run in order.")),
    )


def recipe_model() -> type[Recipe]:
    """The Recipe model with `steps` typed by every registered step kind (rebuilt if plugins register more)."""
    return _recipe_model(tuple(REGISTRY))


def json_schema() -> dict[str, Any]:
    return recipe_model().model_json_schema()


Override = str | tuple[str, Any]
"""`path=value` as typed on the command line (the value read as YAML), or (path, value) with the value already read
(a sweep's values): the path may name a step, `steps[evaluate].params.models`."""


def parse_recipe(text: str, source: str = "<recipe>", overrides: Sequence[Override] = (), base_dir: Path | None = None, *, check_chain: bool = True) -> Recipe:
    """Validate recipe YAML and its chain of steps; raise RecipeError listing every problem with its path and line.

    `base_dir` is where relative data files are; without it their columns are not checked before running. `check_chain`
    off skips the contract walk: only for tests that show the runner refuses what validation refuses.
    """
    try:
        raw = safe_yaml.load(text)
    except safe_yaml.YamlError as error:
        raise RecipeError(source, [Problem((), error.message, error.line)]) from None
    if not isinstance(raw, dict):
        raise RecipeError(source, [Problem((), f"a recipe is a YAML mapping with name, parties and steps; got {type(raw).__name__}", 1)])
    if overrides:
        raw = _unshared(raw)
    for override in overrides:
        apply_override(raw, override, source)
    model = recipe_model()
    problems: list[Problem] = list(non_finite_problems(raw))
    recipe = None
    try:  # strict, as JSON: a Boolean is no integer, "3" is no number, yet 1 is a float and "hospital" a role
        recipe = model.model_validate_json(json.dumps(raw, default=str), strict=True)
    except ValidationError as error:
        non_finite = {problem.loc for problem in problems}
        problems.extend(problem for problem in problems_from_validation(error, model) if problem.loc not in non_finite)
    except (TypeError, ValueError) as error:  # keys JSON cannot hold, e.g. a list used as a mapping key
        problems.append(Problem((), f"the recipe holds a value JSON cannot represent: {error}"))
    problems.extend(reference_problems(raw, REGISTRY))
    if recipe is not None and not problems and check_chain:  # the chain is walked only when every step's parameters are valid
        problems.extend(chain_problems(recipe, base_dir))
    if problems:
        raise RecipeError(source, locate_lines(text, problems))
    assert recipe is not None
    return recipe


def non_finite_problems(node: Any, loc: tuple[str | int, ...] = ()) -> Iterator[Problem]:
    """Every inf or nan in the raw recipe: no parameter means anything at infinity, and a nan compares false with every bound."""
    if isinstance(node, float) and not math.isfinite(node):
        yield Problem(loc, f"must be a finite number, got {node}")
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from non_finite_problems(value, (*loc, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from non_finite_problems(value, (*loc, index))


def load_recipe(path: Path, overrides: Sequence[Override] = ()) -> Recipe:
    try:
        size = path.stat().st_size
        if size > safe_yaml.MAX_BYTES:  # refused before reading: a 50 MB file must not cost a minute of parsing
            raise RecipeError(str(path), [Problem((), f"the recipe file is {size:,} bytes; the workbench reads at most {safe_yaml.MAX_BYTES:,}")])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError(str(path), [Problem((), f"cannot read the recipe file: {error}", None)]) from None
    return parse_recipe(text, str(path), overrides, base_dir=path.parent)


def apply_override(raw: dict[str, Any], override: Override, source: str) -> None:
    """Set `path=value` (value parsed as YAML) in the raw recipe, e.g. `steps[1].params.rounds=5` or
    `steps[fl_dp].params.rounds=5`; or (path, value) with the value as it is."""
    shown = override if isinstance(override, str) else f"{override[0]}={json.dumps(override[1], default=str)}"
    try:
        if isinstance(override, str):
            path_text, sep, value_text = override.partition("=")
            if not sep:
                raise ValueError("expected path=value, e.g. seed=3 or steps[0].params.l2=0.1")
            path = resolve_step_names(raw, parse_path(path_text))
            value = safe_yaml.load(value_text, "the value")
        else:
            path, value = resolve_step_names(raw, parse_path(override[0])), override[1]
        node: Any = raw
        for part in path[:-1]:
            node = _child(node, part)
        _check_slot(node, path[-1])
        node[path[-1]] = value
    except ValueError as error:  # YamlError included
        raise RecipeError(source, [Problem((), f"--set {shown!r}: {error}", None)]) from None


def resolve_step_names(raw: dict[str, Any], loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """`("steps", "fl_dp", ...)` -> `("steps", 3, ...)`: the index of the step of that name (its own, or its kind numbered
    as `Recipe.step_names` numbers it); a ValueError naming the steps when there is none."""
    if len(loc) < 2 or loc[0] != "steps" or not isinstance(loc[1], str) or not isinstance(raw.get("steps"), list):
        return loc
    steps = raw["steps"]
    names = default_step_names(
        (str(step.get("kind")), step["name"] if isinstance(step.get("name"), str) else None) if isinstance(step, dict) else ("?", None) for step in steps
    )
    if loc[1] not in names:
        raise ValueError(f"no step named {loc[1]!r}{did_you_mean(loc[1], names)}; the steps: {', '.join(names)} (or give its index, steps[0])")
    return ("steps", names.index(loc[1]), *loc[2:])


def _unshared(node: Any) -> Any:
    """The raw recipe with every YAML alias made a copy of its own: `model: *model` shares one mapping among the steps that
    name it, so an override of one step's `model.l2` would otherwise change them all."""
    if isinstance(node, dict):
        return {key: _unshared(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_unshared(value) for value in node]
    return node


def _check_slot(node: Any, part: str | int) -> None:
    if isinstance(part, int):
        if not isinstance(node, list) or not 0 <= part < len(node):
            raise ValueError(f"no item [{part}] there (it has {len(node) if isinstance(node, list) else 0})")
    elif not isinstance(node, dict):
        raise ValueError(f"cannot set field {part!r} inside a {type(node).__name__}")


def _child(node: Any, part: str | int) -> Any:
    _check_slot(node, part)
    return node[part] if isinstance(part, int) else node.setdefault(part, {})


__all__ = [
    "DataRef",
    "PartySpec",
    "Problem",
    "Recipe",
    "Override",
    "RecipeError",
    "StepSpec",
    "default_step_names",
    "json_schema",
    "load_recipe",
    "parse_recipe",
    "recipe_model",
    "resolve_step_names",
]
