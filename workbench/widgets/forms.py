"""Forms generated from a pydantic JSON schema, with each validation message next to its field.

The recipe builder renders every step kind's parameters with these, so a new
step kind gets a form from its `Params` model alone. Scalars get text boxes,
booleans checkboxes, enums drop-downs, lists of scalars a comma-separated box
and nested models a fieldset; anything else (unions, mappings) is edited as
YAML in place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from html import escape
from typing import Any

import ipywidgets as widgets
import yaml

from workbench import safe_yaml

Path = tuple[str | int, ...]
OMIT = object()
"""A field left empty: its key is left out, so the model's default applies or pydantic reports it missing."""

LABEL_WIDTH = "150px"
ERROR_STYLE = "color: var(--jp-error-color1, #c62828); font-size: 0.9em"


def resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Follow $ref and unwrap Optional (anyOf [X, null]); return the schema and whether None is allowed."""
    schema = dict(schema)
    nullable = False
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        nullable = len(options) < len(schema["anyOf"])
        if len(options) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **options[0]}
    if "$ref" in schema:
        target = defs.get(schema["$ref"].split("/")[-1], {})
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema, nullable


class FieldWidget:
    """One field: its widget, its value, and a place for its validation message."""

    def __init__(
        self, path: Path, name: str, schema: Mapping[str, Any], defs: Mapping[str, Any], value: Any, on_change: Callable[[], None], required: bool = False
    ) -> None:
        self.path, self.name, self.on_change = path, name, on_change
        self.schema, self.nullable = resolve(schema, defs)
        self.required = required
        self.error = widgets.HTML()
        self.children: list[FieldWidget] = []
        self.kind = self._kind()
        self.widget = self._build(value, defs)
        description = escape(self.schema.get("description", ""))
        label = widgets.HTML(f"<span title='{description}'>{escape(name)}{' *' if required else ''}</span>", layout=widgets.Layout(width=LABEL_WIDTH))
        if self.kind == "object":
            self.box = widgets.VBox(
                [widgets.HTML(f"<b>{escape(name)}</b> <span style='opacity:.7'>{description}</span>"), self.widget, self.error],
                layout=widgets.Layout(border="1px solid var(--jp-border-color2, #ddd)", padding="2px 8px", margin="2px 0"),
            )
        else:
            self.box = widgets.HBox([label, self.widget, self.error])
        self.box.add_class("wb-field")

    def _kind(self) -> str:
        s = self.schema
        if "enum" in s:
            return "enum"
        kind: object = s.get("type")  # a JSON schema's "type" may also be a list of types
        if kind == "object" and "properties" in s:
            return "object"
        if kind == "array" and resolve(s.get("items", {}), {})[0].get("type") in ("string", "integer", "number"):
            return "list"
        if kind in ("string", "integer", "number", "boolean"):
            return kind
        return "yaml"

    def _build(self, value: Any, defs: Mapping[str, Any]) -> widgets.Widget:
        s, placeholder = self.schema, _placeholder(self.schema)
        if value is OMIT:
            value = s.get("default")
        if self.kind == "object":
            required = set(s.get("required", []))
            value = value if isinstance(value, Mapping) else {}
            for key, sub in s.get("properties", {}).items():
                self.children.append(FieldWidget((*self.path, key), key, sub, defs, value.get(key, OMIT), self.on_change, key in required))
            return widgets.VBox([child.box for child in self.children])
        if self.kind == "boolean":
            widget: widgets.Widget = widgets.Checkbox(value=bool(value), indent=False)
        elif self.kind == "enum":
            options = [("—", None)] if self.nullable else []
            fallback = None if self.nullable else s["enum"][0]
            widget = widgets.Dropdown(options=options + [(str(o), o) for o in s["enum"]], value=value if value in s["enum"] else fallback)
        elif self.kind == "list":
            text = ", ".join(str(v) for v in value) if isinstance(value, list) else ""
            widget = widgets.Text(value=text, placeholder=placeholder or "comma-separated", layout=widgets.Layout(width="320px"))
        elif self.kind == "yaml":
            text = "" if value is None else yaml.safe_dump(value, default_flow_style=None, sort_keys=False).strip()
            widget = widgets.Textarea(value=text, placeholder=placeholder or "YAML", layout=widgets.Layout(width="320px", height="64px"))
        else:
            widget = widgets.Text(
                value="" if value is None else str(value), placeholder=placeholder, layout=widgets.Layout(width="320px"), continuous_update=False
            )
        widget.observe(lambda _change: self.on_change(), names="value")
        return widget

    def value(self) -> Any:
        """The field's value as the model expects it, or OMIT when left empty."""
        if self.kind == "object":
            data = {child.name: v for child in self.children if (v := child.value()) is not OMIT}
            if self.nullable and not any(child.given(data) for child in self.children):
                return OMIT  # an optional section with nothing filled beyond its defaults is absent, not half-filled
            return data if data or self.required else OMIT
        raw = self.widget.value
        if self.kind in ("boolean", "enum"):
            return raw
        if isinstance(raw, str) and not raw.strip():
            return None if self.nullable else OMIT
        if self.kind == "list":
            item_type = resolve(self.schema.get("items", {}), {})[0].get("type")
            return [_scalar(part.strip(), item_type) for part in raw.split(",") if part.strip()]
        if self.kind == "yaml":
            try:
                return safe_yaml.load(raw, "the field")
            except safe_yaml.YamlError:
                return raw  # left as text: validation reports it against this field
        return _scalar(raw.strip(), self.kind)

    def given(self, data: Mapping[str, Any]) -> bool:
        """Whether the section's `data` holds this field as the user set it: a required one filled, or any other away
        from its default (an optional section whose fields all have defaults, like `dp`, is present only when changed)."""
        if self.name not in data:
            return False
        return self.required or data[self.name] != self.schema.get("default", OMIT)

    def fields(self) -> list[FieldWidget]:
        return [self, *(f for child in self.children for f in child.fields())]

    def show(self, message: str) -> None:
        self.error.value = f"<span class='wb-field-error' style='{ERROR_STYLE}'>{escape(message)}</span>" if message else ""


def _scalar(text: str, kind: str | None) -> Any:
    """Numbers typed as text become numbers; what does not parse stays text, for validation to name."""
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        return text
    return text


def _placeholder(schema: Mapping[str, Any]) -> str:
    if "default" in schema and schema["default"] is not None:
        return f"default: {schema['default']}"
    return ""


class SchemaForm:
    """All fields of one model (e.g. a step's Params) under a path in the recipe."""

    def __init__(self, schema: Mapping[str, Any], value: Mapping[str, Any] | None, path: Path, on_change: Callable[[], None]) -> None:
        defs = schema.get("$defs", {})
        required = set(schema.get("required", []))
        value = value or {}
        self.path = path
        self.fields = [
            FieldWidget((*path, key), key, sub, defs, value.get(key, OMIT), on_change, key in required) for key, sub in schema.get("properties", {}).items()
        ]
        self.box = widgets.VBox([f.box for f in self.fields])

    def value(self) -> dict[str, Any]:
        return {f.name: v for f in self.fields if (v := f.value()) is not OMIT}

    def all_fields(self) -> list[FieldWidget]:
        return [leaf for f in self.fields for leaf in f.fields()]


def place_problems(fields: list[FieldWidget], problems: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """Show each problem at the field whose path is its longest prefix; return the ones no field took."""
    messages: dict[int, list[str]] = {}
    unplaced = []
    for loc, message in problems:
        best = max((f for f in fields if loc[: len(f.path)] == f.path), key=lambda f: len(f.path), default=None)
        if best is None:
            unplaced.append((loc, message))
        else:
            suffix = ".".join(str(p) for p in loc[len(best.path) :])
            messages.setdefault(id(best), []).append(f"{suffix}: {message}" if suffix else message)
    for f in fields:
        f.show("; ".join(messages.get(id(f), [])))
    return unplaced
