"""Identifier normalisation for record linkage, as polars expressions.

Two organisations never spell a person the same way: case, accents, hyphens,
date formats, sex codings and phone punctuation differ. Private set
intersection only finds *equal* strings, so each side maps its own columns to
one canonical form before anything is blinded. Each party declares its own
columns and formats (a `KeySource`); the canonical form of a field must be the
same on both sides (`KeyField.canonical_form`), which is checked before any
message is sent, so a mismatch fails loudly instead of silently linking nobody.

A composite key (e.g. given name + family name + birth date + sex) joins the
canonical fields with a separator no canonical value contains. A record with
any field null or unreadable gets no key for that combination: it cannot be
linked by it, and may still be linked by another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.models.features import FeatureError

if TYPE_CHECKING:  # polars loads where it is used: `workbench validate` reads the key models only
    import polars as pl

FieldType = Literal["name", "date", "sex", "phone", "exact"]
KEY_SEPARATOR = "\x1f"
"""Joins the fields of a composite key: the ASCII unit separator, a control character no canonical value keeps."""

SEX_CODES: dict[str, str] = {
    "f": "f",
    "female": "f",
    "w": "f",
    "woman": "f",
    "fem": "f",
    "m": "m",
    "male": "m",
    "man": "m",
    "mal": "m",
}
"""Common sex codings (after lower-casing) and their canonical letter; a party adds its own with `codes`."""


class LinkageInputError(FeatureError):
    """A party's identifiers cannot be linked as declared; the message names party, table, column and the fix.

    A FeatureError, so the runner shows it as a message about the user's data,
    not as a crash.
    """


class KeyField(BaseModel):
    """How one party spells one identifier field: which column, and how to read it."""

    model_config = ConfigDict(extra="forbid")

    column: str = Field(description="Column of the party's table that holds this field.")
    type: FieldType = Field(
        "exact",
        description="name: case, accents (NFKD), spacing and punctuation folded; date: parsed with `format`, compared as a day; "
        "sex: coded f/m (common codings known, more via `codes`); phone: digits only (optionally the last `last_digits`); "
        "exact: compared as written after trimming whitespace and dropping control characters (e.g. a hashed national id).",
    )
    format: str | None = Field(
        None, description="date only: strftime format the column is written in, e.g. '%d/%m/%Y'; default ISO '%Y-%m-%d'. Date columns need none."
    )
    codes: dict[str, Literal["f", "m"]] = Field(
        default_factory=dict, description="sex only: extra codes of this party (case-insensitive) and what they mean, e.g. {'1': m, '2': f}."
    )
    last_digits: int | None = Field(
        None, ge=4, le=20, description="phone only: keep the last N digits, dropping country codes and trunk prefixes (e.g. 10 for NANP numbers)."
    )

    @model_validator(mode="after")
    def _options_fit_type(self) -> KeyField:
        for option, applies in (("format", "date"), ("codes", "sex"), ("last_digits", "phone")):
            if getattr(self, option) and self.type != applies:
                raise ValueError(f"{option} only applies to type {applies}, not {self.type!r}")
        return self

    def canonical_form(self) -> str:
        """What the normalised value looks like; both sides of a link must produce the same form for every field."""
        return f"phone(last {self.last_digits} digits)" if self.type == "phone" and self.last_digits else self.type


class KeySource(BaseModel):
    """One party's side of a link: its table, its record id, and how its columns spell each identifier field."""

    model_config = ConfigDict(extra="forbid")

    table: str = Field(description="Table in the party's store whose records are linked.")
    id_column: str | None = Field(
        None, description="Column that identifies a record (unique); used to check for duplicate records and to score against ground truth."
    )
    fields: dict[str, KeyField] = Field(
        min_length=1, description="Identifier fields by a name both sides share (e.g. given_name, birth_date), each with this party's column and format."
    )


def _fold_name(column: pl.Expr) -> pl.Expr:
    """Lower-case, decompose (NFKD), drop combining marks, keep letters and digits only: 'García-López ' -> 'garcialopez'.

    Lower-casing comes first so that a capital whose lower case decomposes
    (Turkish İ -> i + dot above) loses its mark like any other accent.
    """
    return column.str.to_lowercase().str.normalize("NFKD").str.replace_all(r"\p{M}", "").str.replace_all(r"[^\p{L}\p{N}]", "")


def _canonical_date(column: pl.Expr, fmt: str | None, dtype: pl.DataType) -> pl.Expr:
    import polars as pl

    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        date = column.cast(pl.Date)
    else:
        date = column.cast(pl.Utf8).str.strip_chars().str.to_date(fmt or "%Y-%m-%d", strict=False)
    return date.dt.strftime("%Y%m%d")


def _canonical_sex(column: pl.Expr, codes: Mapping[str, str]) -> pl.Expr:
    import polars as pl

    mapping = SEX_CODES | {code.strip().lower(): meaning for code, meaning in codes.items()}
    return column.str.strip_chars().str.to_lowercase().replace_strict(mapping, default=None, return_dtype=pl.Utf8)


def _canonical_phone(column: pl.Expr, last_digits: int | None) -> pl.Expr:
    import polars as pl

    digits = column.str.replace_all(r"\D", "")
    if last_digits:
        digits = pl.when(digits.str.len_chars() >= last_digits).then(digits.str.slice(-last_digits)).otherwise(None)
    return digits


def normalize_field(field: KeyField, dtype: pl.DataType) -> pl.Expr:
    """The canonical form of one field as an expression over `field.column` (null where nothing usable is left)."""
    import polars as pl

    column = pl.col(field.column)
    if field.type == "date":
        value = _canonical_date(column, field.format, dtype)
    else:
        text = column.cast(pl.Utf8)
        value = {
            "name": lambda: _fold_name(text),
            "sex": lambda: _canonical_sex(text, field.codes),
            "phone": lambda: _canonical_phone(text, field.last_digits),
            "exact": lambda: text.str.replace_all(r"\p{Cc}", "").str.strip_chars(),
        }[field.type]()
    return pl.when(value.str.len_bytes() > 0).then(value).otherwise(None)


def composite_key(fields: Sequence[str]) -> pl.Expr:
    """Join already-normalised field columns into one key; null when any of them is null."""
    import polars as pl

    return pl.concat_str([pl.col(name) for name in fields], separator=KEY_SEPARATOR, ignore_nulls=False)


def _shape(value: str) -> str:
    """A value's shape without its content (digits -> 9, letters -> A), safe to show in an error: '05/03/1961' -> '99/99/9999'."""
    return "".join("9" if c.isdigit() else "A" if c.isalpha() else c for c in value)


def _decode_utf8(frame: pl.DataFrame, column: str, where: str) -> pl.Series:
    """A Binary column as text, or an error naming the rows that are not UTF-8 (identifiers compare as UTF-8 strings)."""
    import polars as pl

    values = frame.get_column(column)
    decoded: list[str | None] = []
    bad: list[int] = []
    for row, raw in enumerate(values.to_list()):
        try:
            decoded.append(None if raw is None else bytes(raw).decode("utf-8"))
        except UnicodeDecodeError:
            bad.append(row)
            decoded.append(None)
    if bad:
        raise LinkageInputError(
            f"{where}: column {column!r} holds bytes that are not valid UTF-8 in {len(bad)} of {len(values)} rows "
            f"(first at row {bad[0]}); re-encode the source as UTF-8 before linking"
        )
    return pl.Series(column, decoded, dtype=pl.Utf8)


def normalized_fields(frame: pl.DataFrame, source: KeySource, names: Sequence[str], where: str) -> pl.DataFrame:
    """The canonical value of each named field, one column per field, row-aligned with `frame`.

    Raises LinkageInputError naming `where` (party and table) and the column when a
    column is missing, entirely null, not text, or mostly unreadable in the declared format.
    """
    import polars as pl

    columns: dict[str, pl.Series] = {}
    for name in names:
        if name not in source.fields:
            raise LinkageInputError(
                f"{where}: no field {name!r} is declared for this party; declared: {', '.join(source.fields)}. "
                f"Add {name}: {{column: ..., type: ...}} under its fields"
            )
        field = source.fields[name]
        raw = _identifier_column(frame, field, name, where)
        value = raw.to_frame().select(normalize_field(field, raw.dtype).alias(name)).get_column(name)
        _check_readable(raw, value, field, name, where)
        columns[name] = value
    return pl.DataFrame(columns, schema={name: pl.Utf8 for name in names})


def _identifier_column(frame: pl.DataFrame, field: KeyField, name: str, where: str) -> pl.Series:
    """The field's column as text (or dates), refusing one that is missing, of another type, or entirely null."""
    import polars as pl

    if field.column not in frame.columns:
        raise LinkageInputError(f"{where}: field {name!r} reads column {field.column!r}, which the table does not have; it has {', '.join(frame.columns)}")
    raw = frame.get_column(field.column)
    temporal = raw.dtype == pl.Date or isinstance(raw.dtype, pl.Datetime)
    if raw.dtype == pl.Binary:
        raw = _decode_utf8(frame, field.column, where)
    elif not (raw.dtype == pl.Utf8 or raw.dtype.is_integer() or (field.type == "date" and temporal)):
        raise LinkageInputError(f"{where}: column {field.column!r} ({name}) is {raw.dtype}; a {field.type} field needs text")
    if raw.null_count() == raw.len():
        raise LinkageInputError(f"{where}: column {field.column!r} ({name}) is entirely null ({raw.len()} rows); fill it or leave {name!r} out of every pass")
    return raw


def _check_readable(raw: pl.Series, value: pl.Series, field: KeyField, name: str, where: str) -> None:
    """A column that mostly fails to normalise is written in another format than declared: say so, showing shapes, not values.

    A few unreadable values only cost those records their key; most of them
    means the two sides would silently never meet.
    """
    unreadable = raw.is_not_null() & value.is_null()
    bad, present = int(unreadable.sum()), raw.len() - raw.null_count()
    if bad <= present / 2:
        return
    shapes = sorted({_shape(str(v)) for v in raw.filter(unreadable).head(200).to_list()})[:3]
    expected = {
        "date": f"dates written as {field.format or '%Y-%m-%d'}",
        "sex": f"sex codes {sorted(SEX_CODES)} or declared `codes`",
        "phone": f"at least {field.last_digits} digits" if field.last_digits else "digits",
    }.get(field.type, "text")
    raise LinkageInputError(
        f"{where}: column {field.column!r} ({name}): {bad} of {present} values are not {expected} "
        f"(they look like {', '.join(shapes)}); declare this party's own format for {name!r}"
    )


def check_same_canonical_forms(first: tuple[str, KeySource], second: tuple[str, KeySource], names: Sequence[str]) -> None:
    """Both parties must reduce every field used to the same form, or equal people would never compare equal."""
    (party_a, a), (party_b, b) = first, second
    for name in names:
        for party, source in ((party_a, a), (party_b, b)):
            if name not in source.fields:
                raise LinkageInputError(f"party {party!r}: field {name!r} is used in a pass but not declared; declared: {', '.join(source.fields)}")
        form_a, form_b = a.fields[name].canonical_form(), b.fields[name].canonical_form()
        if form_a != form_b:
            raise LinkageInputError(
                f"field {name!r} is normalised differently: party {party_a!r} column {a.fields[name].column!r} as {form_a}, "
                f"party {party_b!r} column {b.fields[name].column!r} as {form_b}; declare the same type and options on both sides"
            )
