"""The synthetic cohort: the properties that linkage, federated training and the report rely on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from workbench.data.cohort import (
    CLINIC_COLUMNS,
    HOSPITAL_COLUMNS,
    NOISE_KINDS,
    NORMALISABLE_NOISE,
    SURGERY_TYPES,
    VENDOR_COLUMNS,
    VENDOR_PART,
    WEARABLE_COLUMNS,
    Cohort,
    CohortParams,
    _fold_text,  # the generator's own notion of "same name up to formatting"
    generate_cohort,
    save_cohort,
)

SEED = 7
IDENTITY = ("given_name", "family_name", "birth_date", "sex", "phone")
NOISE_FIELD = {"day_month_swap": "birth_date", "phone_digit": "phone"} | {kind: kind.split("_", 1)[1] for kind in NOISE_KINDS if kind.endswith("_name")}
HOSPITAL_SCHEMA = {
    "patient_id": pl.String,
    "given_name": pl.String,
    "family_name": pl.String,
    "birth_date": pl.String,
    "sex": pl.String,
    "phone": pl.String,
    "age": pl.Int64,
    "asa_class": pl.Int64,
    "surgery_type": pl.String,
    "emergency": pl.Boolean,
    "diabetes": pl.Boolean,
    "heart_failure": pl.Boolean,
    "ckd": pl.Boolean,
    "copd": pl.Boolean,
    "hemoglobin": pl.Float64,
    "creatinine": pl.Float64,
    "albumin": pl.Float64,
    "death_30d": pl.Boolean,
}
VENDOR_SCHEMA = {
    "person_key": pl.String,
    "given_name": pl.String,
    "family_name": pl.String,
    "birth_date": pl.String,
    "sex": pl.String,
    "phone": pl.String,
    "resting_hr": pl.Float64,
    "daily_steps": pl.Float64,
    "sleep_hours": pl.Float64,
    "spo2": pl.Float64,
}
EHR_FEATURES = ("age", "asa_class", "emergency", "diabetes", "heart_failure", "ckd", "copd", "hemoglobin", "creatinine", "albumin")


@pytest.fixture(scope="module")
def params() -> CohortParams:
    return CohortParams()


@pytest.fixture(scope="module")
def cohort(params: CohortParams) -> Cohort:
    return generate_cohort(params, SEED)


def hospitals(cohort: Cohort) -> dict[str, pl.DataFrame]:
    return {name: frame for name, frame in cohort.parts.items() if name != VENDOR_PART}


def vendor_in_hospital_format(cohort: Cohort) -> pl.DataFrame:
    return cohort.parts[VENDOR_PART].with_columns(
        birth_date=pl.col("birth_date").str.to_date("%d/%m/%Y").dt.strftime("%Y-%m-%d"),
        sex=pl.col("sex").replace_strict({"female": "F", "male": "M"}),
        phone=pl.col("phone").str.replace_all(r"\D", "").str.strip_prefix("1"),
    )


def linked_pairs(cohort: Cohort) -> pl.DataFrame:
    """Each true link with the hospital's identity and the vendor's (suffix _v), in one format."""
    ehr = pl.concat(frame.select("patient_id", *IDENTITY).with_columns(hospital=pl.lit(name)) for name, frame in hospitals(cohort).items())
    return cohort.truth.links.join(ehr, on=["hospital", "patient_id"]).join(
        vendor_in_hospital_format(cohort).select("person_key", *IDENTITY), on="person_key", suffix="_v"
    )


def test_same_seed_gives_equal_frames(cohort: Cohort, params: CohortParams) -> None:
    again = generate_cohort(params, SEED)
    assert again.parts.keys() == cohort.parts.keys()
    for name, frame in cohort.parts.items():
        assert frame.equals(again.parts[name]), name
    assert again.truth.links.equals(cohort.truth.links)
    assert again.truth.coefficients == cohort.truth.coefficients


def test_different_seeds_differ(cohort: Cohort, params: CohortParams) -> None:
    other = generate_cohort(params, SEED + 1)
    assert all(not frame.equals(other.parts[name]) for name, frame in cohort.parts.items())


def test_schemas(cohort: Cohort, params: CohortParams) -> None:
    assert list(cohort.parts) == [h.name for h in params.hospitals] + [VENDOR_PART]
    for name, frame in hospitals(cohort).items():
        assert dict(frame.schema) == HOSPITAL_SCHEMA, name
        assert frame.null_count().sum_horizontal().item() == 0, name
    assert dict(cohort.parts[VENDOR_PART].schema) == VENDOR_SCHEMA
    assert cohort.parts[VENDOR_PART].null_count().sum_horizontal().item() == 0
    assert dict(cohort.truth.links.schema) == {"hospital": pl.String, "patient_id": pl.String, "person_key": pl.String, "noise": pl.String}


def test_the_declared_columns_are_the_generated_ones_whatever_the_sizes_and_noise(cohort: Cohort, params: CohortParams) -> None:
    """`validate` reads the columns from HOSPITAL_COLUMNS and VENDOR_COLUMNS instead of generating a cohort."""
    noisier = generate_cohort(params.model_copy(update={"id_noise": 0.5, "vendor_only_people": 3}), SEED)
    for generated in (cohort, noisier):
        assert all(tuple(frame.columns) == HOSPITAL_COLUMNS for frame in hospitals(generated).values())
        assert tuple(generated.parts[VENDOR_PART].columns) == VENDOR_COLUMNS


def test_value_formats_and_ranges(cohort: Cohort) -> None:
    for name, frame in hospitals(cohort).items():
        assert frame["patient_id"].is_unique().all(), name
        assert frame["patient_id"].str.contains(r"^[A-Z]+-\d{6}$").all()
        assert frame["birth_date"].str.contains(r"^\d{4}-\d{2}-\d{2}$").all()
        assert frame["phone"].str.contains(r"^[2-9]\d{2}[2-9]\d{6}$").all()
        assert set(frame["sex"].unique()) == {"F", "M"}
        assert set(frame["surgery_type"].unique()) == set(SURGERY_TYPES)
        assert frame["asa_class"].is_between(1, 5).all()
        birth = frame["birth_date"].str.to_date()
        before_birthday = (birth.dt.month() > 1) | (birth.dt.day() > 1)
        assert (frame["age"] == 2025 - birth.dt.year().cast(pl.Int64) - before_birthday.cast(pl.Int64)).all()
        assert frame["age"].is_between(18, 95).all()
    vendor = cohort.parts[VENDOR_PART]
    assert vendor["person_key"].is_unique().all()
    assert vendor["person_key"].str.contains(r"^WV-\d{7}$").all()
    assert vendor["birth_date"].str.contains(r"^\d{2}/\d{2}/\d{4}$").all()
    assert vendor["phone"].str.contains(r"^\+1 \(\d{3}\) \d{3}-\d{4}$").all()
    assert set(vendor["sex"].unique()) == {"female", "male"}
    assert vendor["spo2"].is_between(80, 100).all() and (vendor["daily_steps"] > 0).all()


def test_names_are_international(cohort: Cohort) -> None:
    names = pl.concat([cohort.parts[VENDOR_PART].select("given_name", "family_name")])
    every = set(names["given_name"]) | set(names["family_name"])
    for example in ("José", "Zoë", "Müller", "O'Brien", "García-López", "Nguyễn"):
        assert example in every


def test_sizes_and_coverage(cohort: Cohort, params: CohortParams) -> None:
    links = cohort.truth.links
    for spec in params.hospitals:
        assert cohort.parts[spec.name].height == spec.patients
        linked = links.filter(pl.col("hospital") == spec.name).height
        assert linked / spec.patients == pytest.approx(spec.vendor_coverage, abs=0.005)
    assert cohort.parts[VENDOR_PART].height == links.height + params.vendor_only_people
    assert links["person_key"].is_unique().all()
    assert links.select("hospital", "patient_id").is_unique().all()


def test_noise_share_and_every_kind_present(cohort: Cohort, params: CohortParams) -> None:
    noise = cohort.truth.links["noise"]
    assert noise.is_not_null().mean() == pytest.approx(params.id_noise, abs=0.005)
    assert set(noise.drop_nulls().unique()) == set(NOISE_KINDS)
    assert cohort.truth.noisy_links.height == noise.is_not_null().sum()
    normalisable = noise.is_in(list(NORMALISABLE_NOISE)).sum() / noise.is_not_null().sum()
    assert 0.3 < normalisable < 0.7


def test_links_join_and_noise_touches_exactly_one_field(cohort: Cohort) -> None:
    pairs = linked_pairs(cohort)
    assert pairs.height == cohort.truth.links.height
    differs = {field: (pairs[field] != pairs[f"{field}_v"]).to_numpy() for field in IDENTITY}
    clean = pairs["noise"].is_null().to_numpy()
    assert not any(differs[field][clean].any() for field in IDENTITY)
    for row, kind in zip(np.flatnonzero(~clean), pairs["noise"].to_numpy()[~clean], strict=True):
        assert [field for field in IDENTITY if differs[field][row]] == [NOISE_FIELD[kind]], kind
    for field in ("given_name", "family_name"):
        folded = pairs.select(
            pl.col(field).map_elements(_fold_text, return_dtype=pl.String),
            pl.col(f"{field}_v").map_elements(_fold_text, return_dtype=pl.String),
            "noise",
        )
        normalisable = folded.filter(pl.col("noise").is_in([k for k in NORMALISABLE_NOISE if field in k]))
        typo = folded.filter(pl.col("noise") == f"typo_{field}")
        assert (normalisable[field] == normalisable[f"{field}_v"]).all()
        assert (typo[field] != typo[f"{field}_v"]).all()


def test_identities_of_different_people_rarely_collide(cohort: Cohort) -> None:
    vendor = vendor_in_hospital_format(cohort)
    people = pl.concat(
        [
            *(frame.select(IDENTITY) for frame in hospitals(cohort).values()),
            vendor.join(cohort.truth.links, on="person_key", how="anti").select(IDENTITY),
        ]
    )
    key = pl.concat_str(
        pl.col("given_name", "family_name").map_elements(_fold_text, return_dtype=pl.String),
        "birth_date",
        "sex",
        separator="|",
    )
    assert people.height == sum(f.height for f in hospitals(cohort).values()) + 20000
    assert people.select(key.is_duplicated().mean()).item() < 0.001


def test_no_ground_truth_in_parts(cohort: Cohort) -> None:
    for name, frame in hospitals(cohort).items():
        assert "person_key" not in frame.columns, name
        assert not set(frame.columns) & set(WEARABLE_COLUMNS), name
    assert not {"hospital", "patient_id", "noise", "death_30d"} & set(cohort.parts[VENDOR_PART].columns)
    # Row order of the vendor's table says nothing about who is a hospital patient.
    vendor_keys = cohort.parts[VENDOR_PART]["person_key"]
    positions = np.flatnonzero(vendor_keys.is_in(cohort.truth.links["person_key"].implode()).to_numpy())
    assert positions.mean() / vendor_keys.len() == pytest.approx(0.5, abs=0.03)


def test_case_mix_and_mortality_differ_by_site(cohort: Cohort, params: CohortParams) -> None:
    rates = {}
    for spec in params.hospitals:
        frame = cohort.parts[spec.name]
        assert frame["emergency"].mean() == pytest.approx(spec.emergency_rate, abs=0.06)
        assert frame["age"].mean() == pytest.approx(spec.mean_age, abs=2.5)
        rates[spec.name] = frame["death_30d"].mean()
        assert 0.015 < rates[spec.name] < 0.13, spec.name
    overall = pl.concat(f.select("death_30d") for f in hospitals(cohort).values())["death_30d"].mean()
    assert 0.04 <= overall <= 0.08
    assert max(rates.values()) - min(rates.values()) >= 0.02
    mixes = [f["surgery_type"].value_counts(normalize=True).sort("surgery_type") for f in hospitals(cohort).values()]
    assert not mixes[0]["proportion"].equals(mixes[-1]["proportion"])


def test_true_coefficients_are_published(cohort: Cohort, params: CohortParams) -> None:
    coefficients = cohort.truth.coefficients
    assert {"intercept", *EHR_FEATURES, *WEARABLE_COLUMNS} <= coefficients.keys()
    assert {f"site_shift[{h.name}]" for h in params.hospitals} <= coefficients.keys()
    assert coefficients["daily_steps"] < 0 and coefficients["spo2"] < 0 and coefficients["sleep_hours"] < 0
    assert coefficients["resting_hr"] > 0 and coefficients["asa_class"] > 0 and coefficients["albumin"] < 0


def _design(frame: pl.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    surgery = [(pl.col("surgery_type") == s).cast(pl.Float64).alias(s) for s in SURGERY_TYPES[1:]]
    return frame.select(*(pl.col(c).cast(pl.Float64) for c in columns), *surgery).to_numpy()


def test_wearables_measurably_improve_prediction(cohort: Cohort) -> None:
    site = "general_hospital"
    links = cohort.truth.links.filter(pl.col("hospital") == site).select("patient_id", "person_key")
    linked = cohort.parts[site].join(links, on="patient_id").join(cohort.parts[VENDOR_PART].select("person_key", *WEARABLE_COLUMNS), on="person_key")
    y = linked["death_30d"].to_numpy()
    train, test = train_test_split(np.arange(len(y)), test_size=0.5, stratify=y, random_state=0)
    aucs = []
    for columns in (EHR_FEATURES, (*EHR_FEATURES, *WEARABLE_COLUMNS)):
        x = _design(linked, columns)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x[train], y[train])
        aucs.append(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))
    assert aucs[0] > 0.7
    assert aucs[1] - aucs[0] >= 0.02


def test_save_cohort_writes_parts_and_truth_apart(cohort: Cohort, tmp_path: Path) -> None:
    written = save_cohort(cohort, tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in written} == {
        *(f"{name}.parquet" for name in cohort.parts),
        "ground_truth/links.parquet",
        "ground_truth/coefficients.json",
    }
    assert pl.read_parquet(tmp_path / "vendor.parquet").equals(cohort.parts[VENDOR_PART])
    assert pl.read_parquet(tmp_path / "ground_truth" / "links.parquet").equals(cohort.truth.links)
    assert json.loads((tmp_path / "ground_truth" / "coefficients.json").read_text()) == cohort.truth.coefficients


def _hospital(**changes: object) -> dict[str, object]:
    return {"name": "h", "patients": 10, "emergency_rate": 0.1, "mean_age": 60.0, "risk_shift": 0.0, "vendor_coverage": 0.5} | changes


def _clinic(**changes: object) -> dict[str, object]:
    return {"name": "c", "patients": 30, "emergency_rate": 0.2, "mean_age": 65.0, "risk_shift": 0.3, "monitored": 0.5} | changes


def test_a_clinic_changes_no_other_part_and_holds_vitals_only_where_matched() -> None:
    """Issue 15: the flagship's clinic is drawn from its own stream, so adding it leaves every figure of the others as it was."""
    small = {"hospitals": [_hospital(name="a", patients=200), _hospital(name="b", patients=100)], "vendor_only_people": 300}
    without = generate_cohort(CohortParams.model_validate(small), SEED)
    with_clinic = generate_cohort(CohortParams.model_validate(small | {"clinics": [_clinic(patients=400)]}), SEED)
    assert all(with_clinic.parts[name].equals(frame) for name, frame in without.parts.items())
    assert with_clinic.truth.links.equals(without.truth.links)
    clinic = with_clinic.parts["c"]
    assert clinic.columns == list(CLINIC_COLUMNS) and clinic.height == 400
    assert 0.4 < clinic["matched"].mean() < 0.6
    assert clinic.filter(~pl.col("matched")).select(WEARABLE_COLUMNS).null_count().row(0) == (clinic.height - clinic["matched"].sum(),) * 4
    assert clinic.filter(pl.col("matched")).select(WEARABLE_COLUMNS).null_count().row(0) == (0,) * 4


@pytest.mark.parametrize(
    ("params", "location"),
    [
        ({"hospitals": [_hospital(), _hospital()]}, ("hospitals",)),
        ({"hospitals": [_hospital(patients=-1)]}, ("hospitals", 0, "patients")),
        ({"id_noise": 1.5}, ("id_noise",)),
        ({"hospitals": [_hospital(name="vendor")]}, ("hospitals", 0, "name")),
        ({"hospitals": [_hospital(name="General Hospital")]}, ("hospitals", 0, "name")),
        ({"hospitals": [_hospital(vendor_coverage=1.2)]}, ("hospitals", 0, "vendor_coverage")),
        ({"hospitals": []}, ("hospitals",)),
        ({"hospital": []}, ("hospital",)),
        ({"hospitals": [_hospital()], "clinics": [_clinic(name="h")]}, ("clinics",)),
        ({"clinics": [_clinic(monitored=-0.1)]}, ("clinics", 0, "monitored")),
    ],
)
def test_bad_params_name_the_field(params: dict[str, object], location: tuple[object, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        CohortParams.model_validate(params)
    assert [error["loc"] for error in caught.value.errors()] == [location]
