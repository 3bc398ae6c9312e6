"""Recipes are data: schema validation, problems by path and line, overrides, hashing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from workbench.recipe import RecipeError, json_schema, load_recipe, parse_recipe

MINIMAL = """\
name: tiny
seed: 3
datasets:
  uci: {kind: uci_heart}
parties:
  cleveland: {role: hospital, data: {dataset: uci, part: cleveland}}
  hungary: {role: hospital, data: {dataset: uci, part: hungary}}
steps:
  - kind: split
    params: {label: heart_disease}
  - kind: local_train
    params:
      label: heart_disease
      features: {numeric: [age]}
      model: {l2: 0.1}
"""

# Line 12: wrong type; line 9: unknown field; line 14: a party the recipe does not have.
THREE_PROBLEMS = """\
name: broken
datasets:
  uci: {kind: uci_heart}
parties:
  cleveland: {role: hospital, data: {dataset: uci, part: cleveland}}
steps:
  - kind: split
    params: {label: heart_disease}
    colour: blue
  - kind: local_train
    params:
      model: {l2: lots}
      label: heart_disease
      features: {numeric: [age]}
    at: [cleveland, st_elsewhere]
"""


def problems(text: str) -> dict[str, tuple[int | None, str]]:
    with pytest.raises(RecipeError) as caught:
        parse_recipe(text, "test.yaml")
    return {p.path: (p.line, p.message) for p in caught.value.problems}


def test_shipped_recipes_are_valid() -> None:
    for path in sorted((Path(__file__).parents[1] / "recipes").glob("*.yaml")):
        assert load_recipe(path).name


def test_minimal_recipe_gets_defaults() -> None:
    recipe = parse_recipe(MINIMAL)
    assert recipe.steps[0].params.test_fraction == 0.3
    assert recipe.step_names() == ["split", "local_train"]
    assert recipe.step_parties(recipe.steps[0]) == ["cleveland", "hungary"]


def test_wrong_type_unknown_field_and_missing_party_all_named_by_path_and_line() -> None:
    found = problems(THREE_PROBLEMS)
    assert set(found) == {"steps[0].colour", "steps[1].params.model.l2", "steps[1].at[1]"}
    line, message = found["steps[1].params.model.l2"]
    assert line == 12 and "valid number" in message and "'lots'" in message
    line, message = found["steps[0].colour"]
    assert line == 9 and "unknown field 'colour'" in message and "kind, name, at, params" in message
    line, message = found["steps[1].at[1]"]
    assert line == 15 and "unknown party 'st_elsewhere'" in message and "cleveland" in message


def test_error_text_names_file_line_and_path() -> None:
    with pytest.raises(RecipeError) as caught:
        parse_recipe(THREE_PROBLEMS, "recipes/broken.yaml")
    assert "recipes/broken.yaml:12: steps[1].params.model.l2: Input should be a valid number" in str(caught.value)


def test_misspelled_field_gets_a_suggestion() -> None:
    found = problems(MINIMAL.replace("{label: heart_disease}", "{label: heart_disease, test_fractoin: 0.2}"))
    assert found["steps[0].params.test_fractoin"] == (10, "unknown field 'test_fractoin' (did you mean 'test_fraction'?)")


def test_missing_required_field() -> None:
    found = problems(MINIMAL.replace("    params: {label: heart_disease}\n", "    params: {}\n"))
    assert found["steps[0].params.label"][1] == "required field 'label' is missing"


def test_unknown_step_kind_lists_the_known_ones() -> None:
    found = problems(MINIMAL.replace("kind: split", "kind: splti"))
    line, message = found["steps[0]"]
    assert line == 9 and "'splti' (did you mean 'split'?)" in message and "evaluate" in message


def test_dataset_and_part_references_are_checked() -> None:
    found = problems(MINIMAL.replace("{dataset: uci, part: hungary}", "{dataset: ucl, part: hungary}").replace("part: cleveland", "part: boston"))
    assert "unknown dataset 'ucl'" in found["parties.hungary.data.dataset"][1]
    line, message = found["parties.cleveland.data.part"]
    assert line == 6 and "no part 'boston'" in message and "va_long_beach" in message


def test_role_mismatch_is_reported() -> None:
    text = MINIMAL.replace("  hungary: {role: hospital", "  hungary: {role: aggregator")
    text += "    at: [hungary]\n"
    assert "role hospital; 'hungary' is 'aggregator'" in problems(text)["steps[1].at[0]"][1]


def test_reserved_and_invalid_party_names() -> None:
    found = problems(MINIMAL.replace("  hungary:", "  coordinator:"))
    assert "reserved" in found["parties.coordinator"][1]
    assert "parties.Bad Name" in problems(MINIMAL.replace("  hungary:", "  Bad Name:"))


def test_yaml_syntax_error_has_a_line() -> None:
    found = problems("name: x\nparties: {a: [\n")
    assert list(found.values())[0][0] is not None and "not valid YAML" in list(found.values())[0][1]


def test_not_a_mapping() -> None:
    assert "a recipe is a YAML mapping" in problems("- just\n- a list\n")[""][1]


def test_overrides_apply_before_validation() -> None:
    recipe = parse_recipe(MINIMAL, overrides=["seed=11", "steps[1].params.model.l2=0.5", "steps[0].params.test_fraction=0.2"])
    assert (recipe.seed, recipe.steps[1].params.model.l2, recipe.steps[0].params.test_fraction) == (11, 0.5, 0.2)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("steps[5].params.l2=1", "no item [5]"),
        ("seed", "expected path=value"),
        ("steps..x=1", "cannot read path"),
        ("seed.x=1", "cannot set field 'x' inside a int"),
    ],
)
def test_bad_overrides_are_clear(override: str, expected: str) -> None:
    with pytest.raises(RecipeError, match=expected.replace("[", r"\[")):
        parse_recipe(MINIMAL, overrides=[override])


def test_override_values_are_validated_too() -> None:
    assert "steps[1].params.model.l2" in problems_with_override("steps[1].params.model.l2=-1")


def test_overrides_address_a_step_by_its_name_as_by_its_index() -> None:
    """A step's own name, or its kind (numbered from the second use on, as the report names it): a command line keeps
    working when a step is inserted before the one it sets."""
    named = MINIMAL.replace("  - kind: local_train\n", "  - kind: local_train\n    name: baseline\n") + (
        "  - kind: local_train\n    params: {label: heart_disease, features: {numeric: [age]}, save_as: second}\n"
        "  - kind: local_train\n    params: {label: heart_disease, features: {numeric: [age]}, save_as: third}\n"
    )
    overrides = ["steps[baseline].params.model.l2=0.7", "steps[split].params.test_fraction=0.2", "steps[local_train_3].params.model.l2=2"]
    recipe = parse_recipe(named, overrides=overrides)
    assert recipe.step_names() == ["split", "baseline", "local_train_2", "local_train_3"]
    assert (recipe.steps[1].params.model.l2, recipe.steps[0].params.test_fraction, recipe.steps[3].params.model.l2) == (0.7, 0.2, 2)
    assert parse_recipe(named, overrides=[("steps[local_train_2].params.save_as", "again")]).steps[2].params.save_as == "again"


def test_an_override_naming_no_step_lists_the_steps_and_the_closest_name() -> None:
    with pytest.raises(RecipeError) as caught:
        parse_recipe(MINIMAL, overrides=["steps[local_trian].params.model.l2=1"])
    message = caught.value.problems[0].message
    assert "no step named 'local_trian' (did you mean 'local_train'?)" in message and "the steps: split, local_train" in message
    with pytest.raises(RecipeError, match="no step named 'evaluate'; the steps: split, local_train"):
        parse_recipe(MINIMAL, overrides=["steps[evaluate].params.models=[local]"])


def problems_with_override(override: str) -> set[str]:
    with pytest.raises(RecipeError) as caught:
        parse_recipe(MINIMAL, overrides=[override])
    return {p.path for p in caught.value.problems}


def test_hash_ignores_layout_but_not_content() -> None:
    recipe = parse_recipe(MINIMAL)
    relaid = yaml.safe_dump(yaml.safe_load(MINIMAL), default_flow_style=True)
    assert parse_recipe(relaid).hash() == recipe.hash()
    assert parse_recipe(MINIMAL, overrides=["seed=4"]).hash() != recipe.hash()


def test_yaml_round_trip_is_exact() -> None:
    recipe = parse_recipe(MINIMAL)
    again = parse_recipe(recipe.to_yaml())
    assert again == recipe and again.hash() == recipe.hash()


def test_json_schema_covers_every_step_kind_and_documents_fields() -> None:
    schema = json_schema()
    defs = schema["$defs"]
    assert {"SplitStep", "LocalTrainStep", "EvaluateStep"} <= set(defs)
    assert defs["SplitParams"]["properties"]["test_fraction"]["description"]
    assert schema["properties"]["steps"]["items"]["discriminator"]["propertyName"] == "kind"


def test_an_override_of_one_step_leaves_the_steps_that_share_its_yaml_anchor_alone() -> None:
    """`model: *model` shares one mapping: --set of the local model's l2 changed the federated and pooled ones too."""
    recipe = load_recipe(Path(__file__).parents[1] / "recipes" / "uci_heart.yaml", ["steps[local_train].params.model.l2=100"])
    l2 = {name: step.params.model.l2 for name, step in zip(recipe.step_names(), recipe.steps) if hasattr(step.params, "model")}
    assert l2 == {"local_train": 100.0, "pooled_train": 0.05, "fl_train": 0.05}
