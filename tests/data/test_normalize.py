from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from workbench.data.cohort import NORMALISABLE_NOISE, CohortParams, HospitalSpec, generate_cohort
from workbench.data.normalize import (
    KeyField,
    KeySource,
    LinkageInputError,
    check_same_canonical_forms,
    composite_key,
    normalized_fields,
)

HOSPITAL = KeySource(
    table="ehr",
    id_column="patient_id",
    fields={
        "given_name": KeyField(column="given_name", type="name"),
        "family_name": KeyField(column="family_name", type="name"),
        "birth_date": KeyField(column="birth_date", type="date"),
        "sex": KeyField(column="sex", type="sex"),
        "phone": KeyField(column="phone", type="phone", last_digits=10),
    },
)
VENDOR = KeySource(
    table="vitals",
    id_column="person_key",
    fields={
        **HOSPITAL.fields,
        "birth_date": KeyField(column="birth_date", type="date", format="%d/%m/%Y"),
    },
)
FIELDS = list(HOSPITAL.fields)


def _one(values: list[object], field: KeyField, dtype: pl.DataType = pl.Utf8) -> list[str | None]:
    frame = pl.DataFrame({field.column: values}, schema={field.column: dtype})
    return normalized_fields(frame, KeySource(table="t", fields={"f": field}), ["f"], "party 'p', table 't'")["f"].to_list()


def test_names_fold_case_accents_spacing_and_punctuation() -> None:
    name = KeyField(column="n", type="name")
    assert _one(["José García-López", "JOSE GARCIA LOPEZ", " jose garcia lopez  ", "O'Brien", "OBRIEN", "Zoë", "İnan", "Ødegaard"], name) == [
        "josegarcialopez",
        "josegarcialopez",
        "josegarcialopez",
        "obrien",
        "obrien",
        "zoe",
        "inan",
        "ødegaard",
    ]


def test_dates_in_each_partys_own_format_meet() -> None:
    assert _one(["1961-03-05", " 2000-12-31"], KeyField(column="d", type="date")) == ["19610305", "20001231"]
    assert _one(["05/03/1961", "31/02/2000", "05/03/1961"], KeyField(column="d", type="date", format="%d/%m/%Y")) == ["19610305", None, "19610305"]
    assert _one([date(1961, 3, 5)], KeyField(column="d", type="date"), pl.Date) == ["19610305"]


def test_sex_codings_and_phone_digits() -> None:
    assert _one(["F", "male", " Female", "m", None], KeyField(column="s", type="sex")) == ["f", "m", "f", "m", None]
    assert _one(["1", "2"], KeyField(column="s", type="sex", codes={"1": "m", "2": "f"})) == ["m", "f"]
    phone = KeyField(column="p", type="phone", last_digits=10)
    assert _one(["+1 (555) 012-3456", "5550123456", "012-3456"], phone) == ["5550123456", "5550123456", None]
    assert _one([5550123456], phone, pl.Int64) == ["5550123456"]


def test_a_composite_key_is_null_when_a_field_is() -> None:
    frame = pl.DataFrame({"a": ["x", None], "b": ["y", "z"]})
    assert frame.select(composite_key(["a", "b"]))["a"].to_list() == ["x\x1fy", None]


def test_normalisation_undoes_exactly_the_formatting_noise_of_the_cohort() -> None:
    cohort = generate_cohort(
        CohortParams(
            hospitals=[HospitalSpec(name="h", patients=3000, emergency_rate=0.2, mean_age=60, risk_shift=0, vendor_coverage=0.6)],
            vendor_only_people=0,
            id_noise=0.5,
        ),
        seed=3,
    )
    keys = {}
    for part, source in (("h", HOSPITAL), ("vendor", VENDOR)):
        fields = normalized_fields(cohort.parts[part], source, FIELDS, part)
        ids = cohort.parts[part][source.id_column]  # type: ignore[index]
        keys[part] = fields.select(key=composite_key(FIELDS)).with_columns(ids.alias(source.id_column))  # type: ignore[arg-type]
    joined = cohort.truth.links.join(keys["h"], on="patient_id").join(keys["vendor"], on="person_key", suffix="_vendor")
    equal = joined.with_columns(same=pl.col("key") == pl.col("key_vendor"))
    fixable = equal.filter(pl.col("noise").is_null() | pl.col("noise").is_in(list(NORMALISABLE_NOISE)))
    assert fixable.height > 1000 and fixable["same"].all()
    assert not equal.filter(~(pl.col("noise").is_null() | pl.col("noise").is_in(list(NORMALISABLE_NOISE))))["same"].any()


def test_missing_and_all_null_columns_name_party_and_column() -> None:
    frame = pl.DataFrame({"given_name": ["a"], "family_name": [None]}, schema={"given_name": pl.Utf8, "family_name": pl.Utf8})
    with pytest.raises(LinkageInputError, match=r"party 'h', table 'ehr': field 'birth_date' reads column 'birth_date', which the table does not have"):
        normalized_fields(frame, HOSPITAL, ["given_name", "birth_date"], "party 'h', table 'ehr'")
    with pytest.raises(LinkageInputError, match=r"column 'family_name' \(family_name\) is entirely null"):
        normalized_fields(frame, HOSPITAL, ["family_name"], "party 'h', table 'ehr'")
    with pytest.raises(LinkageInputError, match="no field 'email' is declared"):
        normalized_fields(frame, HOSPITAL, ["email"], "party 'h', table 'ehr'")


def test_bytes_that_are_not_utf8_are_named() -> None:
    frame = pl.DataFrame({"given_name": [b"Ana", b"Jos\xe9"]})
    with pytest.raises(LinkageInputError, match=r"'given_name' holds bytes that are not valid UTF-8 in 1 of 2 rows \(first at row 1\); re-encode"):
        normalized_fields(frame, HOSPITAL, ["given_name"], "party 'h', table 'ehr'")
    assert normalized_fields(frame.head(1), HOSPITAL, ["given_name"], "h")["given_name"].to_list() == ["ana"]


def test_a_format_that_does_not_fit_the_data_is_refused_without_showing_values() -> None:
    frame = pl.DataFrame({"birth_date": ["05/03/1961", "17/11/1980"]})
    with pytest.raises(LinkageInputError, match=r"2 of 2 values are not dates written as %Y-%m-%d \(they look like 99/99/9999\)") as error:
        normalized_fields(frame, HOSPITAL, ["birth_date"], "party 'vendor', table 'vitals'")
    assert "1961" not in str(error.value)


def test_both_sides_must_normalise_a_field_the_same_way() -> None:
    check_same_canonical_forms(("h", HOSPITAL), ("v", VENDOR), FIELDS)  # different date formats, one canonical form
    text_dates = VENDOR.model_copy(update={"fields": {**VENDOR.fields, "birth_date": KeyField(column="birth_date", type="exact")}})
    with pytest.raises(LinkageInputError, match=r"'birth_date' is normalised differently: party 'h' column 'birth_date' as date, party 'v' .* as exact"):
        check_same_canonical_forms(("h", HOSPITAL), ("v", text_dates), FIELDS)
    short_phone = VENDOR.model_copy(update={"fields": {**VENDOR.fields, "phone": KeyField(column="phone", type="phone", last_digits=7)}})
    with pytest.raises(LinkageInputError, match="last 10 digits.*last 7 digits"):
        check_same_canonical_forms(("h", HOSPITAL), ("v", short_phone), ["phone"])


def test_options_must_fit_the_field_type() -> None:
    with pytest.raises(ValueError, match="format only applies to type date"):
        KeyField(column="x", type="name", format="%Y")
