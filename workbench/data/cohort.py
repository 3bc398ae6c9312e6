"""The synthetic surgical cohort: hospitals and a wearables vendor who share patients but no identifiers.

Real linked EHR + wearable data cannot be shipped, so this generator plays the parties: each hospital
holds an EHR extract with a 30-day mortality label, the vendor holds wearable summaries for its
customers, and some people appear on both sides under identifiers that differ the way real registries
do. The outcome depends on wearable signals the hospitals do not have, which is what makes linking
worth its privacy cost. Everything needed to score linkage and models (true pairs, noise kinds, the
generating coefficients) is returned separately in `CohortTruth` and never enters a party's table.
See datasets/synthetic_cohort.md for the card.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

if TYPE_CHECKING:  # numpy and polars load with the first cohort: the CLI and `workbench schema` import CohortParams only
    import numpy as np
    import polars as pl

VENDOR_PART: Final = "vendor"
SURGERY_TYPES: Final[tuple[str, ...]] = ("general", "orthopedic", "vascular", "cardiac", "neuro")
REFERENCE_DATE: Final = date(2025, 1, 1)
"""Ages are completed years at this date, so `age` and `birth_date` never disagree."""

# ---------------------------------------------------------------------------------------------------
# Names. Drawn uniformly and independently so that (name, birth date, sex) is near-unique across the
# ~26k people; names from many languages, in the Latin alphabet, make normalisation (accents, case,
# apostrophes, hyphens, particles) a real task. Letters whose case mapping is not reversible (German
# sharp s, Turkish dotless i) are left out on purpose: no normaliser could undo a case change on them.


def _split_names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.replace("\n", ",").split(",") if name.strip())


_FEMALE_GIVEN: Final = _split_names("""
Emma, Olivia, Sophie, Charlotte, Amelia, Grace, Hannah, Emily, Jessica, Sarah, Rebecca, Rachel, Megan,
Abigail, Katherine, Elizabeth, Margaret, Susan, Patricia, Linda, Barbara, Jennifer, Karen, Nancy, Dorothy,
Helen, Deborah, Sandra, Ashley, Kimberly, Madison, Lauren, Victoria, Natalie, Evelyn, Harper, Ruby,
Imogen, Eleanor, Beatrice, Florence, Mary-Kate, Siobhán, Aoife, Niamh, Saoirse, Róisín, Caoimhe, Orla,
María, Lucía, Sofía, Carmen, Ana María, Mercedes, Pilar, Rocío, Inés, Dolores, Guadalupe, Ximena,
Valentina, Camila, Beatriz, Leonor, Conceição, Graça, Fernanda, Letícia, Mariana, Gabriela, Alejandra,
Chloé, Léa, Manon, Camille, Zoë, Élodie, Hélène, Céline, Amélie, Anaïs, Maëlle, Noémie, Océane, Margaux,
Marie-Claire, Anne-Sophie, Brigitte, Geneviève, Françoise, Anneliese, Birgit, Jutta, Ursula, Käthe,
Gisela, Heike, Sabine, Marlene, Friederike, Renate, Giulia, Chiara, Francesca, Alessandra, Federica,
Giovanna, Ilaria, Martina, Serena, Raffaella, Nicoletta, Ingrid, Astrid, Sigrid, Solveig, Åsa, Märta,
Linnéa, Freja, Kirsten, Liv, Małgorzata, Agnieszka, Katarzyna, Zofia, Wiktoria, Jadwiga, Bożena, Zuzana,
Lenka, Tereza, Kateřina, Šárka, Hương, Thảo, Ngọc, Trang, Phương, Hằng, Xiuying, Mei, Jing, Xiaoling,
Ji-woo, Seo-yeon, Min-ji, Ha-eun, Yuki, Haruka, Sakura, Aiko, Keiko, Priya, Ananya, Lakshmi, Deepika,
Kavya, Sunita, Pooja, Fatima, Aisha, Layla, Mariam, Noor, Yasmin, Zainab, Rania, Salma, Ayşe, Elif,
Zeynep, Gülşen, Özlem, Merve, Eleni, Dimitra, Vasiliki, Despina, Chiamaka, Ngozi, Adaeze, Folake,
Yetunde, Chidinma, Anastasia, Ekaterina, Olga, Svetlana, Tatiana, Irina, Ludmila
""")

_MALE_GIVEN: Final = _split_names("""
James, John, Robert, Michael, William, David, Richard, Joseph, Thomas, Charles, Christopher, Daniel,
Matthew, Anthony, Mark, Steven, Paul, Andrew, Joshua, Kevin, Brian, George, Timothy, Edward, Jason,
Ryan, Jacob, Nicholas, Eric, Jonathan, Oliver, Harry, Jack, Oscar, Theo, Archie, Seán, Pádraig, Ciarán,
Oisín, Eoin, Cian, Tadhg, Darragh, José, Juan, Luis, Carlos, Jesús, Alejandro, Javier, Miguel Ángel,
José Luis, Andrés, Ramón, Joaquín, Sebastián, Tomás, Íñigo, Rodrigo, Gonzalo, João, Gonçalo, Sérgio,
Vinícius, Thiago, Rogério, Jean-Pierre, Jean-Luc, François, Jérôme, Benoît, Loïc, Gaëtan, Rémi, Stéphane,
Thierry, Étienne, Hervé, Noël, Jürgen, Jörg, Günther, Matthias, Klaus, Uwe, Dieter, Wolfgang, Stefan,
Lukas, Maximilian, Rüdiger, Giuseppe, Giovanni, Francesco, Alessandro, Lorenzo, Matteo, Niccolò,
Salvatore, Vincenzo, Gianluca, Raffaele, Søren, Bjørn, Lars, Anders, Håkan, Nils, Magnus, Øystein,
Gustav, Mikkel, Łukasz, Piotr, Krzysztof, Wojciech, Grzegorz, Paweł, Jiří, Vojtěch, Václav, Ondřej, Minh,
Tuấn, Dũng, Hùng, Quang, Thắng, Huy, Bảo, Wei, Jun, Hao, Lei, Qiang, Zhiwei, Jianguo, Min-jun, Seo-jun,
Ji-ho, Hyun-woo, Hiroshi, Takeshi, Kenji, Haruto, Yusuke, Daisuke, Arjun, Rahul, Vikram, Sanjay, Rajesh,
Aditya, Rohan, Suresh, Mohammed, Ahmed, Omar, Youssef, Khalid, Hassan, Ibrahim, Tariq, Karim, Mehmet,
Emre, Burak, Oğuz, Çağlar, Gökhan, Dimitrios, Georgios, Konstantinos, Nikolaos, Spyros, Chinedu, Emeka,
Babatunde, Obinna, Chukwuemeka, Olumide, Aleksandr, Dmitri, Sergei, Vladimir, Nikolai, Ivan, Mikhail
""")

_FAMILY: Final = _split_names("""
Smith, Johnson, Williams, Brown, Jones, Miller, Davis, Wilson, Anderson, Taylor, Moore, Jackson, Martin,
Thompson, White, Harris, Clark, Lewis, Robinson, Walker, Young, Allen, King, Wright, Scott, Hill, Green,
Adams, Baker, Nelson, Carter, Mitchell, Roberts, Turner, Phillips, Campbell, Parker, Evans, Edwards,
Collins, Stewart, Morris, Rogers, Reed, Cook, Morgan, Bell, Murphy, Bailey, Cooper, Richardson, Howard,
Ward, Peterson, Gray, Watson, Brooks, Kelly, Sanders, Price, Bennett, Wood, Barnes, Ross, Henderson,
Jenkins, Hughes, Butler, Foster, Russell, Griffin, Hayes, Myers, Hamilton, Graham, Sullivan, Wallace,
Reynolds, Fisher, Ellis, Harrison, Gibson, McDonald, Smith-Jones, O'Brien, O'Connor, O'Sullivan,
O'Neill, McCarthy, Ó Súilleabháin, Fitzgerald, Mac Giolla, García, Rodríguez, Martínez, Hernández,
López, González, Pérez, Sánchez, Ramírez, Torres, Flores, Rivera, Gómez, Díaz, Reyes, Morales, Jiménez,
Álvarez, Romero, Ruiz, Castillo, Ortiz, Gutiérrez, Chávez, Vásquez, Muñoz, Ibáñez, Peña, García-López,
de la Cruz, Sáenz-Ortega, Silva, Santos, Oliveira, Souza, Pereira, Costa, Carvalho, Gonçalves, Araújo,
Magalhães, Simões, dos Reis, Dubois, Lefèvre, Leroy, Moreau, Girard, Bonnet, Dupont, Lambert, Fontaine,
Chevalier, Rousseau, Mercier, Gauthier, Bélanger, Côté, Lévesque, Pelletier, D'Amours, Saint-Pierre,
Bérubé, Gagné, Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, Hoffmann,
Schäfer, Koch, Bauer, Richter, Klein, Wolf, Schröder, Neumann, Schwarz, Zimmermann, Krüger, Hartmann,
Köhler, Jäger, Vogel, Böhm, von Bülow, de Vries, van Dijk, van den Berg, Bakker, Janssen, Visser,
de Jong, Mulder, de Boer, Rossi, Russo, Ferrari, Esposito, Bianchi, Romano, Colombo, Ricci, Marino,
Greco, Bruno, Gallo, Conti, De Luca, Mancini, Giordano, Rizzo, Lombardi, Moretti, D'Angelo, Di Stefano,
Barbieri, Caruso, Johansson, Andersson, Karlsson, Nilsson, Eriksson, Larsson, Olsson, Persson,
Svensson, Jørgensen, Sørensen, Hansen, Pedersen, Ødegaard, Åberg, Lindqvist, Virtanen, Mäkinen,
Häkkinen, Korhonen, Nowak, Kowalski, Wiśniewski, Wójcik, Kowalczyk, Kamiński, Lewandowski, Zieliński,
Woźniak, Dąbrowski, Kozłowski, Mazur, Dvořák, Novák, Svoboda, Černý, Procházka, Kučera, Veselý, Němec,
Nguyễn, Trần, Lê, Phạm, Hoàng, Huỳnh, Phan, Vũ, Bùi, Ngô, Dương, Wang, Li, Zhang, Liu, Chen, Yang,
Huang, Zhao, Wu, Zhou, Xu, Sun, Zhu, Guo, Lin, Luo, Gao, Kim, Lee, Park, Choi, Jung, Kang, Yoon, Jang,
Satō, Suzuki, Takahashi, Tanaka, Watanabe, Itō, Yamamoto, Nakamura, Kobayashi, Patel, Sharma, Singh,
Kumar, Gupta, Reddy, Iyer, Nair, Chatterjee, Banerjee, Mehta, Desai, Joshi, Al-Farsi, Al-Hashimi,
El-Amin, Haddad, Khalil, Mansour, Nasser, Saleh, Abdullah, Hussein, Ben Youssef, Kaya, Demir, Şahin,
Çelik, Öztürk, Arslan, Doğan, Koç, Özdemir, Güneş, Papadopoulos, Georgiou, Nikolaidis, Konstantinou,
Karagiannis, Okafor, Adeyemi, Okonkwo, Balogun, Eze, Nwosu, Olawale, Chukwu, Ogunleye, Bello, Ivanov,
Smirnov, Kuznetsov, Popov, Vasiliev, Petrov, Sokolov, Novikov, Fedorov, Morozov, Volkov, Cohen, Levi,
Mizrahi, Peretz, Friedman, Ben-David
""")

# ---------------------------------------------------------------------------------------------------
# The outcome model. Coefficients are on the logit scale per unit of the column as it appears in the
# party's table (age per year, daily_steps per step, ...), so anyone can recompute a person's true
# risk from the published columns; signs and rough sizes follow the perioperative-risk literature.

_COEFFICIENTS: Final[dict[str, float]] = {
    "intercept": 26.1,
    "age": 0.025,
    "asa_class": 0.35,
    "emergency": 0.7,
    "surgery_type[orthopedic]": -0.4,
    "surgery_type[vascular]": 0.35,
    "surgery_type[cardiac]": 0.6,
    "surgery_type[neuro]": 0.45,
    "diabetes": 0.15,
    "heart_failure": 0.55,
    "ckd": 0.35,
    "copd": 0.3,
    "hemoglobin": -0.1,
    "creatinine": 0.2,
    "albumin": -0.4,
    "resting_hr": 0.045,
    "daily_steps": -0.00028,
    "sleep_hours": -0.4,
    "spo2": -0.3,
}
EHR_FEATURES: Final[tuple[str, ...]] = (
    "age",
    "asa_class",
    "emergency",
    "diabetes",
    "heart_failure",
    "ckd",
    "copd",
    "hemoglobin",
    "creatinine",
    "albumin",
)
"""Hospital columns the outcome depends on linearly; surgery_type enters one-hot with 'general' as reference."""
WEARABLE_COLUMNS: Final[tuple[str, ...]] = ("resting_hr", "daily_steps", "sleep_hours", "spo2")
_CONTACT_COLUMNS: Final = ("given_name", "family_name", "birth_date", "sex", "phone")
HOSPITAL_COLUMNS: Final[tuple[str, ...]] = ("patient_id", *_CONTACT_COLUMNS, *EHR_FEATURES[:2], "surgery_type", *EHR_FEATURES[2:], "death_30d")
"""A hospital part's columns, whatever the cohort's sizes and noise, so `validate` knows them without generating
anything (tests/data/test_cohort.py holds the generator to them)."""
VENDOR_COLUMNS: Final[tuple[str, ...]] = ("person_key", *_CONTACT_COLUMNS, *WEARABLE_COLUMNS)
CLINIC_COLUMNS: Final[tuple[str, ...]] = (*HOSPITAL_COLUMNS, "matched", *WEARABLE_COLUMNS)
"""A clinic part's columns: a hospital's, and the vitals its own monitoring recorded (null where `matched` is false)."""

# ---------------------------------------------------------------------------------------------------
# Identifier noise, applied to the vendor's copy (customers type their own details into an app).
# Weights are relative; a kind that cannot change a given person (no accents to strip, day > 12) is
# skipped for that person and the rest re-weighted, so every noisy link differs in exactly one field.

NOISE_KINDS: Final[dict[str, float]] = {
    "case_given_name": 0.07,
    "case_family_name": 0.10,
    "spacing_given_name": 0.05,
    "spacing_family_name": 0.10,
    "accents_given_name": 0.08,
    "accents_family_name": 0.10,
    "typo_given_name": 0.12,
    "typo_family_name": 0.12,
    "day_month_swap": 0.10,
    "phone_digit": 0.16,
}
NORMALISABLE_NOISE: Final[frozenset[str]] = frozenset(kind for kind in NOISE_KINDS if kind.split("_")[0] in {"case", "spacing", "accents"})
"""Noise kinds that case folding, accent stripping and dropping non-alphanumerics undo completely."""

_SEPARATORS: Final = (" ", "-", "'")


MAX_PEOPLE = 20_000_000
"""Most people one part of the generator may hold: population scale (the linkage issue's 10^6 x 10^6) with room, and a bound
so that a typo of a few zeros is a validation error, not an hour of generating."""


class SiteSpec(BaseModel):
    """One care site with patients; the fields are the knobs that make sites heterogeneous."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Party-part name, a lowercase identifier such as 'general_hospital'.",
    )
    patients: int = Field(gt=0, le=MAX_PEOPLE, description="Number of surgical patients in this site's EHR extract.")
    emergency_rate: float = Field(ge=0, le=1, description="Share of emergency surgery (case mix).")
    mean_age: float = Field(ge=18, le=95, description="Mean patient age in years (case mix).")
    risk_shift: float = Field(ge=-5, le=5, description="Logit shift of 30-day mortality at this site (quality of care, coding).")

    @field_validator("name")
    @classmethod
    def _not_vendor(cls, name: str) -> str:
        if name == VENDOR_PART:
            raise ValueError(f"site name must not be {VENDOR_PART!r}: that part name is the vendor's")
        return name


class HospitalSpec(SiteSpec):
    """A consortium hospital: the vendor knows some of its patients, under identifiers of its own."""

    vendor_coverage: float = Field(ge=0, le=1, description="Share of this hospital's patients that the wearables vendor also knows.")


class ClinicSpec(SiteSpec):
    """A site outside the consortium that joins after training to score its patients (encrypted_inference).

    It runs a remote-monitoring programme of its own, so its table arrives with the four vitals for the patients
    enrolled (`matched` true) and none for the others: the shape of a hospital's linked table, with no linkage.
    """

    monitored: float = Field(ge=0, le=1, description="Share of the clinic's patients whose vitals its own monitoring records.")


def _default_hospitals() -> list[HospitalSpec]:
    return [
        HospitalSpec(
            name="general_hospital",
            patients=5000,
            emergency_rate=0.15,
            mean_age=62.0,
            risk_shift=0.0,
            vendor_coverage=0.6,
        ),
        HospitalSpec(
            name="county_hospital",
            patients=600,
            emergency_rate=0.30,
            mean_age=70.0,
            risk_shift=-0.2,
            vendor_coverage=0.45,
        ),
        HospitalSpec(
            name="trauma_center",
            patients=400,
            emergency_rate=0.55,
            mean_age=52.0,
            risk_shift=0.7,
            vendor_coverage=0.7,
        ),
    ]


class CohortParams(BaseModel):
    """Everything but the seed that shapes a cohort."""

    model_config = ConfigDict(extra="forbid")

    hospitals: list[HospitalSpec] = Field(
        default_factory=_default_hospitals,
        min_length=1,
        description="The hospital parties; names must be unique.",
    )
    clinics: list[ClinicSpec] = Field(
        default_factory=list,
        description="Sites outside the consortium, each drawn from a random stream of its own: adding one changes no other part.",
    )
    vendor_only_people: int = Field(default=20000, ge=0, le=MAX_PEOPLE, description="Vendor customers who are no hospital's patients.")
    id_noise: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="Share of linked people whose identifiers differ in exactly one field between the two sides.",
    )

    @field_validator("hospitals")
    @classmethod
    def _unique_names(cls, hospitals: list[HospitalSpec]) -> list[HospitalSpec]:
        names = [hospital.name for hospital in hospitals]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"hospital names must be unique; repeated: {', '.join(duplicates)}")
        return hospitals

    @field_validator("clinics")
    @classmethod
    def _clinic_names_are_their_own(cls, clinics: list[ClinicSpec], info: ValidationInfo) -> list[ClinicSpec]:
        names = [clinic.name for clinic in clinics]
        taken = {hospital.name for hospital in info.data.get("hospitals", [])}
        repeated = sorted({name for name in names if names.count(name) > 1 or name in taken})
        if repeated:
            raise ValueError(f"clinic names must be unique and no hospital's; repeated: {', '.join(repeated)}")
        return clinics


@dataclass(frozen=True)
class CohortTruth:
    """What only the simulation knows; for scoring linkage and models, never for a party's store."""

    links: pl.DataFrame
    """hospital, patient_id, person_key, noise (null for clean links, else a key of NOISE_KINDS)."""
    coefficients: dict[str, float]
    """Logit-scale outcome coefficients per table column, plus 'intercept' and 'site_shift[<hospital>]'."""

    @property
    def noisy_links(self) -> pl.DataFrame:
        import polars as pl

        return self.links.filter(pl.col("noise").is_not_null())


@dataclass(frozen=True)
class Cohort:
    """Every party's table by part name and, kept apart so it cannot be loaded as a party's data, the truth."""

    parts: dict[str, pl.DataFrame]
    truth: CohortTruth


def _fold_text(text: str) -> str:
    """Accent-, case- and punctuation-blind form, used to make sure a typo is not mere formatting."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isalnum()).casefold()


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


# ---------------------------------------------------------------------------------------------------
# People


def _identities(rng: np.random.Generator, ages: np.ndarray) -> pl.DataFrame:
    """Identity fields for one row per person; birth dates spread over the year of each age."""
    import numpy as np
    import polars as pl

    n = len(ages)
    female = rng.random(n) < 0.5
    female_names = np.array(_FEMALE_GIVEN)
    male_names = np.array(_MALE_GIVEN)
    given = np.where(
        female,
        female_names[rng.integers(len(female_names), size=n)],
        male_names[rng.integers(len(male_names), size=n)],
    )
    family = np.array(_FAMILY)[rng.integers(len(_FAMILY), size=n)]
    days_old = np.floor(ages * 365.2425).astype(np.int64)
    birth = np.datetime64(REFERENCE_DATE, "D") - days_old.astype("timedelta64[D]")
    # NANP-shaped numbers: area code and exchange never start with 0 or 1.
    digits = np.column_stack(
        [
            rng.integers(2, 10, n),
            rng.integers(0, 10, (n, 2)),
            rng.integers(2, 10, n),
            rng.integers(0, 10, (n, 6)),
        ]
    )
    phone = ["".join(map(str, row)) for row in digits.tolist()]
    return pl.DataFrame(
        {
            "given_name": given,
            "family_name": family,
            "birth_date": pl.Series(birth),
            "female": female,
            "phone": phone,
        }
    )


def _completed_years(birth: pl.Expr) -> pl.Expr:
    import polars as pl

    reference = REFERENCE_DATE
    before_birthday = (birth.dt.month() > reference.month) | ((birth.dt.month() == reference.month) & (birth.dt.day() > reference.day))
    return (pl.lit(reference.year) - birth.dt.year() - before_birthday.cast(pl.Int64)).cast(pl.Int64)


def _frailty(rng: np.random.Generator, ages: np.ndarray) -> np.ndarray:
    """Latent frailty: what drives both the EHR's comorbidities and the wearables, partly age-related."""
    return 0.03 * (ages - 60.0) + rng.normal(0.0, 1.0, len(ages))


def _wearables(rng: np.random.Generator, frailty: np.ndarray, ages: np.ndarray) -> dict[str, np.ndarray]:
    """Wearables track frailty closely (weeks of data), unlike a handful of EHR codes and labs."""
    import numpy as np

    n = len(frailty)
    return {
        "resting_hr": np.round(np.clip(70 + 4.0 * frailty + rng.normal(0, 6, n), 40, 130), 1),
        "daily_steps": np.round(np.clip(np.exp(np.log(6500) - 0.35 * frailty - 0.008 * (ages - 50) + rng.normal(0, 0.3, n)), 300, 40000)),
        "sleep_hours": np.round(np.clip(7.0 - 0.35 * frailty + rng.normal(0, 0.8, n), 3, 11), 2),
        "spo2": np.round(np.clip(97.0 - 0.9 * frailty + rng.normal(0, 1.0, n), 82, 100), 1),
    }


def _logistic(x: np.ndarray) -> np.ndarray:
    import numpy as np

    probability: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return probability


def _surgery_types(rng: np.random.Generator, ages: np.ndarray, emergency: np.ndarray) -> np.ndarray:
    """Surgery mix follows age and urgency, so sites with different case mix get different mixes."""
    import numpy as np

    decades = (ages - 60.0) / 10.0
    logits = np.column_stack(
        [
            np.full(len(ages), 0.6) + 0.6 * emergency,  # general
            0.3 + 0.25 * decades - 1.2 * emergency,  # orthopedic
            -1.0 + 0.35 * decades,  # vascular
            -1.0 + 0.2 * decades - 0.8 * emergency,  # cardiac
            -1.4 + 0.5 * emergency,  # neuro
        ]
    )
    chosen = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
    types: np.ndarray = np.array(SURGERY_TYPES)[chosen]
    return types


def _clinical(rng: np.random.Generator, spec: SiteSpec, ages: np.ndarray, female: np.ndarray, frailty: np.ndarray) -> dict[str, np.ndarray]:
    """EHR features: each sees frailty only through noise, so the EHR alone under-measures it."""
    import numpy as np

    n = len(ages)
    emergency = rng.random(n) < spec.emergency_rate
    decades = (ages - 60.0) / 10.0
    comorbidity = {
        "diabetes": _logistic(-1.6 + 0.2 * decades + 0.2 * frailty),
        "heart_failure": _logistic(-3.0 + 0.45 * decades + 0.35 * frailty),
        "ckd": _logistic(-2.6 + 0.4 * decades + 0.3 * frailty),
        "copd": _logistic(-2.5 + 0.25 * decades + 0.3 * frailty),
    }
    flags = {name: rng.random(n) < p for name, p in comorbidity.items()}
    burden = sum(flag.astype(float) for flag in flags.values())
    asa_score = 0.3 * frailty + 0.6 * burden + 0.2 * decades + 0.7 * emergency + rng.normal(0, 0.6, n)
    asa = 1 + np.searchsorted(np.array([-0.6, 0.5, 1.6, 3.0]), asa_score)
    labs = {
        "hemoglobin": np.round(np.clip(14.2 - 1.2 * female - 0.3 * frailty - 0.9 * flags["ckd"] - 0.5 * emergency + rng.normal(0, 1.3, n), 6.0, 18.5), 1),
        "creatinine": np.round(np.exp(np.log(0.9) - 0.15 * female + 0.6 * flags["ckd"] + 0.05 * frailty + rng.normal(0, 0.2, n)), 2),
        "albumin": np.round(np.clip(4.1 - 0.1 * frailty - 0.3 * emergency + rng.normal(0, 0.4, n), 1.5, 5.2), 1),
    }
    return {
        "asa_class": asa.astype(np.int64),
        "surgery_type": _surgery_types(rng, ages, emergency),
        "emergency": emergency,
        **flags,
        **labs,
    }


def _linear_predictor(columns: dict[str, np.ndarray], shift: float) -> np.ndarray:
    import numpy as np

    c = _COEFFICIENTS
    eta = np.full(len(columns["age"]), c["intercept"] + shift)
    for name in (*EHR_FEATURES, *WEARABLE_COLUMNS):
        eta += c[name] * columns[name].astype(float)
    for surgery in SURGERY_TYPES[1:]:
        eta += c[f"surgery_type[{surgery}]"] * (columns["surgery_type"] == surgery)
    return eta


# ---------------------------------------------------------------------------------------------------
# Identifier noise


def _typo(rng: np.random.Generator, name: str) -> str:
    """One substitution, deletion or transposition that survives normalisation (else it would be formatting)."""
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    for _ in range(100):
        chars = list(name)
        operation = rng.integers(3)
        i = letters[rng.integers(len(letters))]
        if operation == 0:
            replacement = "abcdefghijklmnopqrstuvwxyz"[rng.integers(26)]
            chars[i] = replacement.upper() if chars[i].isupper() else replacement
        elif operation == 1 and len(letters) > 2:
            del chars[i]
        elif operation == 2 and i + 1 < len(chars) and chars[i + 1].isalpha():
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        candidate = "".join(chars)
        if _fold_text(candidate) != _fold_text(name):
            return candidate
    raise RuntimeError(f"no typo found for {name!r}")  # unreachable: every listed name has two or more letters


def _respace(rng: np.random.Generator, name: str) -> str:
    """Drop separators (O'Brien -> OBrien) or swap them (García-López -> García López); pad names without any."""
    if not any(separator in name for separator in _SEPARATORS):
        return f" {name}  "
    if rng.random() < 0.5:
        return "".join(c for c in name if c not in _SEPARATORS)
    return name.translate(str.maketrans(" -'", "-  "))


def _recase(rng: np.random.Generator, name: str) -> str:
    return name.upper() if rng.random() < 0.5 else name.lower()


def _noise_applies(kind: str, person: dict[str, Any]) -> bool:
    """Whether `kind` can change this person at all: no accents to strip, or no valid swapped date, means no."""
    if kind.startswith("accents_"):
        value = person[kind.removeprefix("accents_")]
        return bool(_strip_accents(value) != value)
    if kind == "day_month_swap":
        return bool(person["day"] <= 12 and person["day"] != person["month"])
    return True


def _apply_noise(rng: np.random.Generator, kind: str, person: dict[str, Any]) -> dict[str, Any]:
    """The vendor's copy of one person's identity with exactly one field altered."""
    noisy = dict(person)
    if kind == "day_month_swap":
        noisy["day"], noisy["month"] = person["month"], person["day"]
    elif kind == "phone_digit":
        phone = list(person["phone"])
        i = int(rng.integers(4, 10))
        phone[i] = str((int(phone[i]) + int(rng.integers(1, 10))) % 10)
        noisy["phone"] = "".join(phone)
    else:
        operation, field = kind.split("_", 1)
        change = {"case": _recase, "spacing": _respace, "typo": _typo}.get(operation)
        noisy[field] = _strip_accents(person[field]) if change is None else change(rng, person[field])
    return noisy


def _noisy_identities(rng: np.random.Generator, identities: pl.DataFrame, n_noisy: int) -> tuple[pl.DataFrame, list[str | None]]:
    """The vendor's copy of `identities`, with `n_noisy` random rows altered in one field; plus each row's kind."""
    import numpy as np
    import polars as pl

    people = identities.with_columns(
        year=pl.col("birth_date").dt.year().cast(pl.Int64),
        month=pl.col("birth_date").dt.month().cast(pl.Int64),
        day=pl.col("birth_date").dt.day().cast(pl.Int64),
    ).drop("birth_date")
    rows = people.to_dicts()
    kinds: list[str | None] = [None] * len(rows)
    names = list(NOISE_KINDS)
    base = np.array(list(NOISE_KINDS.values()))
    for row in np.sort(rng.choice(len(rows), size=n_noisy, replace=False)).tolist():
        weights = base * np.array([_noise_applies(kind, rows[row]) for kind in names])
        kind = names[rng.choice(len(names), p=weights / weights.sum())]
        rows[row] = _apply_noise(rng, kind, rows[row])
        kinds[row] = kind
    noisy = pl.DataFrame(rows, schema=people.schema).with_columns(birth_date=pl.date("year", "month", "day"))
    return noisy.select(identities.columns), kinds


# ---------------------------------------------------------------------------------------------------
# Assembly

_IDENTITY_COLUMNS: Final = ("given_name", "family_name", "birth_date", "female", "phone")
_AGE_YEARS: Final = (18.01, 95.9)
"""Bounds of the drawn age, chosen so that completed years on REFERENCE_DATE fall in 18..95. Drawn ages are
centred half a year above the wanted mean because completed years round down."""


def _unique_numbers(rng: np.random.Generator, count: int, digits: int) -> list[int]:
    """Distinct random ids, sorted so that their order says nothing the row order does not."""
    import numpy as np

    return [int(number) for number in np.sort(rng.choice(10**digits, size=count, replace=False))]


def _site_prefix(name: str) -> str:
    return "".join(word[0] for word in name.split("_") if word).upper()


def _people(rng: np.random.Generator, ages: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
    """Identity, age in completed years, wearables (hidden unless the vendor knows the person) and frailty."""
    import polars as pl

    identity = _identities(rng, ages).with_columns(age=_completed_years(pl.col("birth_date")))
    years = identity["age"].to_numpy().astype(float)
    frailty = _frailty(rng, years)
    wearables = {name: pl.Series(values) for name, values in _wearables(rng, frailty, years).items()}
    return identity.with_columns(**wearables), frailty


def _hospital_part(rng: np.random.Generator, spec: SiteSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The site's EHR table and, row-aligned, each patient's identity and wearables as the vendor would see them."""
    import numpy as np
    import polars as pl

    people, frailty = _people(rng, np.clip(rng.normal(spec.mean_age + 0.5, 14.0, spec.patients), *_AGE_YEARS))
    ages = people["age"].to_numpy().astype(float)
    clinical = _clinical(rng, spec, ages, people["female"].to_numpy(), frailty)
    observed = {"age": ages, **clinical, **{c: people[c].to_numpy() for c in WEARABLE_COLUMNS}}
    death = rng.random(spec.patients) < _logistic(_linear_predictor(observed, spec.risk_shift))
    prefix = _site_prefix(spec.name)
    ehr = people.select(
        patient_id=pl.Series([f"{prefix}-{m:06d}" for m in _unique_numbers(rng, spec.patients, 6)], dtype=pl.Utf8),
        given_name="given_name",
        family_name="family_name",
        birth_date=pl.col("birth_date").dt.strftime("%Y-%m-%d"),
        sex=pl.when("female").then(pl.lit("F")).otherwise(pl.lit("M")),
        phone="phone",
        age="age",
        **{name: pl.Series(values) for name, values in clinical.items()},
        death_30d=pl.Series(death),
    ).with_columns(pl.col("surgery_type").cast(pl.Utf8))
    vendor_view = people.select(*_IDENTITY_COLUMNS, *WEARABLE_COLUMNS).with_columns(hospital=pl.lit(spec.name), patient_id=ehr["patient_id"])
    return ehr, vendor_view


def _vendor_part(rng: np.random.Generator, people: pl.DataFrame) -> pl.DataFrame:
    """Shuffled, keyed, and in the vendor's own formats: DD/MM/YYYY, female/male, '+1 (AAA) EEE-LLLL'."""
    import polars as pl

    shuffled = people.select(pl.all().gather(rng.permutation(people.height)))
    keys = [f"WV-{k:07d}" for k in _unique_numbers(rng, people.height, 7)]
    phone_groups = (pl.col("phone").str.slice(start, length) for start, length in ((0, 3), (3, 3), (6, 4)))
    return shuffled.select(
        pl.Series("person_key", keys, dtype=pl.Utf8),
        "given_name",
        "family_name",
        pl.col("birth_date").dt.strftime("%d/%m/%Y"),
        pl.when("female").then(pl.lit("female")).otherwise(pl.lit("male")).alias("sex"),
        pl.format("+1 ({}) {}-{}", *phone_groups).alias("phone"),
        *WEARABLE_COLUMNS,
        # Kept only to build the truth; the caller drops them from the vendor's part.
        "hospital",
        "patient_id",
        "noise",
    )


CLINIC_STREAM: Final = 1
"""Clinic i draws from the stream [seed, 1, i], apart from the one stream of the hospitals and the vendor."""


def _clinic_part(rng: np.random.Generator, spec: ClinicSpec) -> pl.DataFrame:
    """A clinic's EHR with the vitals of the patients its own monitoring enrolled, as `matched` and four columns."""
    import polars as pl

    ehr, view = _hospital_part(rng, spec)
    monitored = pl.Series("matched", rng.random(spec.patients) < spec.monitored)
    return ehr.with_columns(monitored, *(pl.when(monitored).then(view[column]).alias(column) for column in WEARABLE_COLUMNS))


def generate_cohort(params: CohortParams, seed: int) -> Cohort:
    """One seeded draw of every party's table; the same params and seed always give equal frames."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    parts: dict[str, pl.DataFrame] = {}
    linked: list[pl.DataFrame] = []
    for spec in params.hospitals:
        ehr, vendor_view = _hospital_part(rng, spec)
        parts[spec.name] = ehr
        covered = np.sort(rng.choice(spec.patients, size=round(spec.vendor_coverage * spec.patients), replace=False))
        linked.append(vendor_view[covered])
    linked_people = pl.concat(linked)
    noisy, kinds = _noisy_identities(rng, linked_people.select(_IDENTITY_COLUMNS), round(params.id_noise * linked_people.height))
    linked_people = pl.concat([noisy, linked_people.drop(_IDENTITY_COLUMNS)], how="horizontal").with_columns(noise=pl.Series(kinds, dtype=pl.Utf8))
    others, _ = _people(rng, np.clip(rng.normal(45.5, 15.0, params.vendor_only_people), *_AGE_YEARS))
    others = others.select(*_IDENTITY_COLUMNS, *WEARABLE_COLUMNS).with_columns(
        hospital=pl.lit(None, pl.Utf8), patient_id=pl.lit(None, pl.Utf8), noise=pl.lit(None, pl.Utf8)
    )
    vendor = _vendor_part(rng, pl.concat([linked_people, others]))
    parts[VENDOR_PART] = vendor.drop("hospital", "patient_id", "noise")
    links = vendor.filter(pl.col("hospital").is_not_null()).select("hospital", "patient_id", "person_key", "noise").sort("hospital", "patient_id")
    for index, clinic in enumerate(params.clinics):
        parts[clinic.name] = _clinic_part(np.random.default_rng([seed, CLINIC_STREAM, index]), clinic)
    coefficients = dict(_COEFFICIENTS) | {f"site_shift[{site.name}]": site.risk_shift for site in [*params.hospitals, *params.clinics]}
    return Cohort(parts=parts, truth=CohortTruth(links=links, coefficients=coefficients))


def save_cohort(cohort: Cohort, directory: Path) -> list[Path]:
    """Each party's table as <part>.parquet, and the truth apart under ground_truth/ so no party picks it up."""
    truth_dir = directory / "ground_truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, frame in cohort.parts.items():
        frame.write_parquet(path := directory / f"{name}.parquet")
        written.append(path)
    cohort.truth.links.write_parquet(links_path := truth_dir / "links.parquet")
    coefficients_path = truth_dir / "coefficients.json"
    coefficients_path.write_text(json.dumps(cohort.truth.coefficients, indent=2, ensure_ascii=False) + "\n")
    return [*written, links_path, coefficients_path]
