"""The recipe builder: forms from each step's schema, edits both ways, messages next to the field."""

from __future__ import annotations

import html

import pytest

from workbench.recipe import RecipeError, parse_recipe
from workbench.steps import REGISTRY
from workbench.widgets import RecipeBuilder, RecipeSession


def _field(form, name):
    return next(f for f in form.all_fields() if f.name == name)


def test_the_builder_gives_back_the_recipe_it_was_given(flagship) -> None:
    builder = RecipeBuilder(flagship)
    assert builder.recipe().hash() == flagship.hash()
    assert "✓ valid" in builder.status.value


@pytest.mark.parametrize("kind", list(REGISTRY))
def test_every_registered_step_kind_gets_a_form_with_its_parameters(flagship, kind: str) -> None:
    builder = RecipeBuilder(flagship)
    builder.add_step(kind)
    editor = builder._steps[-1]
    assert editor.kind.value == kind
    assert [f.name for f in editor.params.fields] == list(REGISTRY[kind].Params.model_fields)


def test_a_bad_value_is_reported_next_to_its_field(flagship) -> None:
    builder = RecipeBuilder(flagship)
    split = next(editor for editor, spec in zip(builder._steps, flagship.steps) if spec.kind == "split")
    fraction = _field(split.params, "test_fraction")
    fraction.widget.value = "3"
    assert "less than 1" in fraction.error.value
    assert "1 problem" in builder.status.value
    assert "test_fraction: 3" in builder.yaml.value


def test_editing_the_yaml_rebuilds_the_forms(flagship) -> None:
    builder = RecipeBuilder(flagship)
    builder.yaml.value = builder.yaml.value.replace("seed: 7", "seed: 11")
    assert _field(builder._header, "seed").widget.value == "11"
    assert builder.recipe().seed == 11


def test_steps_are_added_moved_and_removed(flagship) -> None:
    builder = RecipeBuilder(flagship)
    kinds = [spec.kind for spec in flagship.steps]
    builder.move_step(1, -1)
    assert [s["kind"] for s in builder.raw()["steps"]] == [kinds[1], kinds[0], *kinds[2:]]
    builder.move_step(0, -1)  # already first: nothing moves
    assert [s["kind"] for s in builder.raw()["steps"]][0] == kinds[1]
    builder.remove_step(0)
    assert len(builder.raw()["steps"]) == len(kinds) - 1


def test_parties_are_added_and_removed(flagship) -> None:
    builder = RecipeBuilder(flagship)
    builder.add_party("key_keeper", role="key_holder")
    assert builder.raw()["parties"]["key_keeper"] == {"role": "key_holder"}
    builder.remove_party("key_keeper")
    assert "key_keeper" not in builder.raw()["parties"]


def test_a_session_checks_each_step_as_its_cell_runs(flagship) -> None:
    session = RecipeSession.from_recipe(flagship)
    index = flagship.step_names().index("split")
    card = session.step("split", "kind: split\nparams: {label: death_30d, test_fraction: 2}\n")
    assert card.problems and card.problems[0].path == f"steps[{index}].params.test_fraction"
    assert "has problems" in card._repr_html_()
    card = session.step("split", "kind: split\nparams: {table: linked, label: death_30d, test_fraction: 0.3}\n")
    assert not card.problems and card.parties
    assert session.recipe().hash() == flagship.hash()


def test_a_broken_chain_is_reported_next_to_the_step_in_the_words_of_validate(flagship) -> None:
    """Issue 10: what `workbench validate` says of a chain (here: a model no step trains), the builder shows at the field."""
    builder = RecipeBuilder(flagship)
    builder.yaml.value = builder.yaml.value.replace("- federated_key_holder\n", "- federated_nobody\n")
    evaluate = next(editor for editor, spec in zip(builder._steps, flagship.steps) if spec.kind == "evaluate")
    models = _field(evaluate.params, "models")
    assert "no earlier step trains a model 'federated_nobody'" in html.unescape(models.error.value)
    with pytest.raises(RecipeError, match="no earlier step trains a model 'federated_nobody'"):
        parse_recipe(builder.yaml.value)
