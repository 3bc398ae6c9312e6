"""Hostile YAML: duplicate keys, alias bombs, deep nesting, huge files; each refused quickly, with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench import safe_yaml
from workbench.recipe import RecipeError, load_recipe, parse_recipe

LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("name: x\nparties:\n  a: {role: hospital}\n  a: {role: aggregator}\n", "key 'a' appears twice in one mapping \\(lines 3 and 4\\)", 4),
        (LAUGHS + "description: *i\n", "expands to more than 200,000 values", 6),
        ("name: &n [*n]\n", "refers to itself through an alias", 1),
        ("description: " + "[" * 40 + "]" * 40 + "\n", "nests deeper than 24 levels", 1),
        ("description: " + "[" * 5000 + "]" * 5000 + "\n", "nests", None),
    ],
    ids=["duplicate-party", "billion-laughs", "recursive-alias", "deep", "very-deep"],
)
def test_hostile_yaml_is_refused_with_its_line(text: str, message: str, line: int | None) -> None:
    with pytest.raises(safe_yaml.YamlError, match=message) as caught:
        safe_yaml.load(text)
    assert caught.value.line == line


def test_merge_keys_keep_their_meaning() -> None:
    assert safe_yaml.load("base: &b {x: 1, y: 2}\nmine: {<<: *b, y: 3}\n")["mine"] == {"x": 1, "y": 3}


def test_a_recipe_with_a_party_defined_twice_names_the_line() -> None:
    with pytest.raises(RecipeError, match=r"<recipe>:4: \(recipe\): key 'a' appears twice"):
        parse_recipe("name: x\nparties:\n  a: {role: hospital}\n  a: {role: aggregator}\nsteps: [{kind: split, params: {label: y}}]\n")


def test_a_huge_recipe_file_is_refused_by_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w") as handle:
        handle.write("name: big\ndescription: '")
        handle.write("x" * 50_000_000)
        handle.write("'\n")
    with pytest.raises(RecipeError, match="the recipe file is 50,000,026 bytes; the workbench reads at most 1,000,000"):
        load_recipe(big)


def test_a_deep_set_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="--set .*nests"):
        parse_recipe(
            "name: x\nparties: {a: {role: hospital}}\nsteps: [{kind: split, params: {label: y}}]\n", overrides=["description=" + "[" * 3000 + "]" * 3000]
        )


def test_numbers_in_scientific_notation_are_numbers_as_yaml_1_2_reads_them() -> None:
    """PyYAML (YAML 1.1) reads `1e-5` as text, and a recipe's `delta: 1e-5` was refused as "not a valid number"."""
    assert safe_yaml.load("a: 1e-5\nb: -2E+3\nc: .5e1\nd: 1e\ne: e5\nf: 1_000e-3\n") == {"a": 1e-5, "b": -2000.0, "c": 5.0, "d": "1e", "e": "e5", "f": 1.0}
