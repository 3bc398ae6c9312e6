"""The recipe builder: parties and steps added, removed, reordered and edited as forms, YAML kept in sync.

Every form comes from a JSON schema: the recipe's own fields and each party
from the recipe model, each step's parameters from its kind's `Params` in the
registry. A change in a form rewrites the YAML and re-validates the whole
recipe, placing each message next to its field; editing the YAML rebuilds the
forms. `builder.recipe()` returns the validated Recipe.
"""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Any

import ipywidgets as widgets
import yaml

from workbench import safe_yaml
from workbench.recipe import PartySpec, Recipe, RecipeError, StepSpec, load_recipe, parse_recipe, recipe_model
from workbench.steps import REGISTRY
from workbench.widgets.forms import ERROR_STYLE, Path, SchemaForm, place_problems
from workbench.widgets.html import MUTED

HEADER_FIELDS = ("name", "description", "seed", "approvals", "datasets")
STEP_META_FIELDS = ("name", "at")
BUTTON = widgets.Layout(width="32px")


class _PartyEditor:
    def __init__(self, builder: RecipeBuilder, name: str, spec: dict[str, Any]) -> None:
        self.name = widgets.Text(value=name, placeholder="party name", layout=widgets.Layout(width="200px"), continuous_update=False)
        self.name.observe(lambda _: builder._changed(), names="value")
        self.form = SchemaForm(PartySpec.model_json_schema(), spec, ("parties", name), builder._changed)
        remove = widgets.Button(icon="trash", tooltip=f"Remove party {name}", layout=BUTTON)
        remove.on_click(lambda _: builder.remove_party(self.name.value))
        self.box = widgets.VBox([widgets.HBox([self.name, remove]), self.form.box], layout=_card())
        self.box.add_class("wb-party-editor")


class _StepEditor:
    def __init__(self, builder: RecipeBuilder, index: int, spec: dict[str, Any]) -> None:
        requested = spec.get("kind")
        kind = requested if isinstance(requested, str) and requested in REGISTRY else next(iter(REGISTRY))
        self.kind = widgets.Dropdown(options=list(REGISTRY), value=kind, layout=widgets.Layout(width="200px"))
        self.kind.observe(lambda _: builder.set_step_kind(index, self.kind.value), names="value")
        doc = " ".join((REGISTRY[kind].__doc__ or "").split())
        meta_schema = _sub_schema(StepSpec.model_json_schema(), STEP_META_FIELDS)
        self.meta = SchemaForm(meta_schema, spec, ("steps", index), builder._changed)
        self.params = SchemaForm(REGISTRY[kind].Params.model_json_schema(), spec.get("params") or {}, ("steps", index, "params"), builder._changed)
        buttons = []
        for icon, tip, action in (
            ("arrow-up", "Move up", lambda _: builder.move_step(index, -1)),
            ("arrow-down", "Move down", lambda _: builder.move_step(index, 1)),
            ("trash", "Remove step", lambda _: builder.remove_step(index)),
        ):
            button = widgets.Button(icon=icon, tooltip=tip, layout=BUTTON)
            button.on_click(action)
            buttons.append(button)
        head = widgets.HBox(
            [
                widgets.HTML(f"<b>{index + 1}.</b>", layout=widgets.Layout(width="24px")),
                self.kind,
                *buttons,
                widgets.HTML(f"<span style='{MUTED}'>{doc}</span>"),
            ]
        )
        self.box = widgets.VBox([head, self.meta.box, widgets.HTML(f"<span style='{MUTED}'>parameters</span>"), self.params.box], layout=_card())
        self.box.add_class("wb-step-editor")

    def value(self) -> dict[str, Any]:
        return {"kind": self.kind.value, **self.meta.value(), "params": self.params.value()}


class RecipeBuilder(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no types, so its VBox is Any to a checker
    """Compose a recipe as forms; `yaml` holds the same recipe as text, both ways."""

    def __init__(self, recipe: Recipe | str | FilePath | dict[str, Any] | None = None) -> None:
        super().__init__()
        self.add_class("wb-recipe-builder")
        self.status = widgets.HTML()
        self.yaml = widgets.Textarea(layout=widgets.Layout(width="100%", height="320px"), continuous_update=False)
        self.yaml.add_class("wb-recipe-yaml")
        self.yaml.observe(self._yaml_edited, names="value")
        self._syncing = False
        self._load(_raw_of(recipe))

    # --- structure -------------------------------------------------------------------------------

    def add_party(self, name: str | None = None, role: str = "hospital") -> None:
        raw = self.raw()
        name = name or _fresh("party", raw["parties"])
        raw["parties"][name] = {"role": role}
        self._load(raw)

    def remove_party(self, name: str) -> None:
        raw = self.raw()
        raw["parties"].pop(name, None)
        self._load(raw)

    def add_step(self, kind: str | None = None) -> None:
        raw = self.raw()
        raw["steps"].append({"kind": kind or next(iter(REGISTRY)), "params": {}})
        self._load(raw)

    def remove_step(self, index: int) -> None:
        raw = self.raw()
        del raw["steps"][index]
        self._load(raw)

    def move_step(self, index: int, offset: int) -> None:
        raw = self.raw()
        target = index + offset
        if 0 <= target < len(raw["steps"]):
            raw["steps"][index], raw["steps"][target] = raw["steps"][target], raw["steps"][index]
            self._load(raw)

    def set_step_kind(self, index: int, kind: str) -> None:
        raw = self.raw()
        raw["steps"][index] = {"kind": kind, "params": {}}
        self._load(raw)

    # --- values ----------------------------------------------------------------------------------

    def raw(self) -> dict[str, Any]:
        """The recipe as the forms hold it, before validation."""
        parties = {}
        for editor in self._parties:
            parties[editor.name.value] = editor.form.value()
        return {**self._header.value(), "parties": parties, "steps": [editor.value() for editor in self._steps]}

    def recipe(self) -> Recipe:
        """The validated recipe; raises RecipeError listing every problem."""
        return parse_recipe(self.yaml.value, "builder")

    # --- sync ------------------------------------------------------------------------------------

    def _load(self, raw: dict[str, Any]) -> None:
        raw = {"parties": {}, "steps": [], **raw}
        schema = recipe_model().model_json_schema()
        self._header = SchemaForm(_sub_schema(schema, HEADER_FIELDS), raw, (), self._changed)
        self._parties = [_PartyEditor(self, name, spec if isinstance(spec, dict) else {}) for name, spec in raw["parties"].items()]
        self._steps = [_StepEditor(self, i, spec if isinstance(spec, dict) else {}) for i, spec in enumerate(raw["steps"])]
        add_party = widgets.Button(description="Add party", icon="plus")
        add_party.on_click(lambda _: self.add_party())
        add_step = widgets.Button(description="Add step", icon="plus")
        add_step.on_click(lambda _: self.add_step())
        forms = widgets.VBox(
            [
                self._header.box,
                widgets.HTML("<h4 style='margin:8px 0 2px'>Parties</h4>"),
                *[e.box for e in self._parties],
                add_party,
                widgets.HTML("<h4 style='margin:8px 0 2px'>Steps</h4>"),
                *[e.box for e in self._steps],
                add_step,
            ],
            layout=widgets.Layout(flex="3", min_width="520px"),
        )
        side = widgets.VBox([widgets.HTML("<h4 style='margin:8px 0 2px'>YAML</h4>"), self.yaml], layout=widgets.Layout(flex="2", min_width="320px"))
        self.children = [self.status, widgets.HBox([forms, side], layout=widgets.Layout(flex_flow="row wrap"))]
        self._changed()

    def _changed(self) -> None:
        if self._syncing:
            return
        text = yaml.safe_dump(self.raw(), sort_keys=False, allow_unicode=True)
        self._syncing = True
        try:
            self.yaml.value = text
        finally:
            self._syncing = False
        self._validate(text)

    def _yaml_edited(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        try:
            raw = safe_yaml.load(change["new"])
        except safe_yaml.YamlError as error:
            self.status.value = f"<span style='{ERROR_STYLE}'>YAML: {error}</span>"
            return
        if isinstance(raw, dict):
            self._load(raw)

    def _validate(self, text: str) -> None:
        try:
            recipe = parse_recipe(text, "builder")
            problems: list[tuple[Path, str]] = []
        except RecipeError as error:
            recipe, problems = None, [(p.loc, p.message) for p in error.problems]
        fields = [
            *self._header.all_fields(),
            *(f for e in self._parties for f in e.form.all_fields()),
            *(f for e in self._steps for f in (*e.meta.all_fields(), *e.params.all_fields())),
        ]
        unplaced = place_problems(fields, problems)
        if recipe is not None:
            self.status.value = f"<span class='wb-valid' style='color:#2e7d32'>✓ valid</span> <span style='{MUTED}'>· hash {recipe.hash()[:12]}</span>"
            return
        items = "".join(f"<li><code>{'.'.join(map(str, loc)) or '(recipe)'}</code>: {message}</li>" for loc, message in unplaced)
        self.status.value = f"<span class='wb-invalid' style='{ERROR_STYLE}'>{len(problems)} problem(s)</span><ul>{items}</ul>"


def _raw_of(recipe: Recipe | str | FilePath | dict[str, Any] | None) -> dict[str, Any]:
    if recipe is None:
        return {"name": "new_recipe", "parties": {}, "steps": []}
    if isinstance(recipe, Recipe):
        return _without_nones(recipe.model_dump(mode="json"))
    if isinstance(recipe, FilePath) or (isinstance(recipe, str) and recipe.endswith((".yaml", ".yml"))):
        return _without_nones(load_recipe(FilePath(recipe)).model_dump(mode="json"))
    if isinstance(recipe, str):
        raw: dict[str, Any] = safe_yaml.load(recipe)  # a recipe's text: a mapping, as _load takes it
        return raw
    return dict(recipe)


def _without_nones(raw: dict[str, Any]) -> dict[str, Any]:
    raw["steps"] = [{k: v for k, v in step.items() if v is not None} for step in raw["steps"]]
    return raw


def _sub_schema(schema: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {
        "properties": {k: v for k, v in schema["properties"].items() if k in fields},
        "required": [k for k in schema.get("required", []) if k in fields],
        "$defs": schema.get("$defs", {}),
    }


def _fresh(prefix: str, taken: dict[str, Any]) -> str:
    n = 1
    while f"{prefix}_{n}" in taken:
        n += 1
    return f"{prefix}_{n}"


def _card() -> widgets.Layout:
    return widgets.Layout(border="1px solid var(--jp-border-color2, #ddd)", padding="4px 8px", margin="4px 0")
