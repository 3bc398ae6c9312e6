"""A differentially private synthetic version of the hospitals' training rows, built federated, then measured.

Each hospital counts the 2-way marginals of the declared columns on its own training rows, adds its share of the
Gaussian noise (discrete, from the operating system's randomness), and the counts are summed by masking, so the
coordinator reads only the noisy total of all sites: no site's counts, noised or not, travel readable. The coordinator
picks a tree of pairs on those totals, asks the hospitals for the tree's pairs again (noised and masked the same way),
fits a tree-shaped model and samples the rows (`privacy/synthetic.py`, in the style of MST). The table is released:
written to the run directory and sent to every hospital (protection dp). Each hospital then trains the recipe's model
on it (train on synthetic, saved for `evaluate` and `audit`) and measures, against its own rows, how faithful and how
private the table is (`privacy/synthetic_quality.py`); only those figures leave.
"""

from __future__ import annotations

import io
import json
from typing import Any

from pydantic import Field, model_validator

from workbench.context import StepContext
from workbench.contracts import Columns, Contract, Randomness, RoleNeed
from workbench.data.splits import SPLIT_COLUMN, split_part
from workbench.ledger import Protection
from workbench.models import model_key
from workbench.models.features import TableRef, design_matrix, label_vector
from workbench.parties import COORDINATOR, Role
from workbench.privacy.synthetic import ColumnBins
from workbench.report.blocks import Block, Table
from workbench.steps.base import Step, register
from workbench.steps.training import TrainingParams

GENERATOR = "generator"
"""Where the step's results keep what the coordinator did (budget, noise, tree), beside each hospital's figures."""


class SynthesizeParams(TrainingParams):
    columns: dict[str, ColumnBins] = Field(
        min_length=3,
        max_length=64,
        description="The columns to synthesize, the label among them, and their bins: {edges: [...]} for a numeric column, {levels: [...]} otherwise.",
    )
    epsilon: float | None = Field(
        4.0, gt=0.0, le=100.0, description="The budget over every measurement, for one patient row at any hospital; null: no noise (ε = ∞, not private)."
    )
    delta: float = Field(1e-5, gt=0.0, lt=1e-2, description="The delta of the (epsilon, delta) guarantee.")
    selection_share: float = Field(0.5, gt=0.0, lt=1.0, description="Share of the budget (in zCDP rho) spent measuring every pair to choose the tree.")
    smoothing: float = Field(
        8.0,
        ge=0.0,
        le=100.0,
        description="Pseudo-counts of P(column | label) added to every row of a conditional, in units of the noise's sigma (none at ε = ∞): "
        "where noise swamps the rare label's sparse counts, the estimate leans on the coarser conditional. Post-processing, free in privacy.",
    )
    into: str = Field("synthetic", description="Table each hospital receives the synthetic rows in.")
    save_as: str = Field("synthetic", description="Name of the model each hospital trains on the synthetic rows (train on synthetic, test on real).")

    @model_validator(mode="after")
    def _the_model_reads_synthesized_columns(self) -> SynthesizeParams:
        missing = [column for column in [self.label, *self.features.columns()] if column not in self.columns]
        if missing:
            raise ValueError(f"the model trained on the synthetic rows reads {', '.join(missing)}, which columns does not synthesize; add them")
        return self


@register
class Synthesize(Step[SynthesizeParams]):
    """MST-style DP synthetic rows (the label a parent of every column) from the hospitals' training rows, marginals summed by
    masking with distributed noise."""

    kind = "synthesize"
    Params = SynthesizeParams
    roles = (Role.HOSPITAL,)

    def contract(self) -> Contract:
        p = self.params
        return Contract(
            needs=(RoleNeed(Role.HOSPITAL),),
            reads=(Columns(p.table, tuple(p.columns), where=("columns",)), Columns(p.table, (SPLIT_COLUMN,))),
            adds=(Columns(p.into, tuple(p.columns), where=("into",), table_at=("into",)),),
            saves_models=(p.save_as,),
            randomness=Randomness.NOISE if p.epsilon is not None else Randomness.SEED_AND_SYSTEM,
        )

    def run(self, ctx: StepContext) -> None:
        import numpy as np

        from workbench.crypto.masked_sum import masked_total
        from workbench.privacy import synthetic as syn

        p = self.params
        hospitals = ctx.parties_with(Role.HOSPITAL)
        names, bins = list(p.columns), list(p.columns.values())
        sizes = [column.size for column in bins]
        codes = {site: self._codes(split_part(ctx.store(site).table(p.table), TableRef(site, p.table), test=False), site) for site in hospitals}
        label = names.index(p.label)
        rho = None if p.epsilon is None else syn.rho_for(p.epsilon, p.delta)
        pairs = syn.all_pairs([i for i in range(len(names)) if i != label])
        sigma_selection = 0.0 if rho is None else syn.noise_sigma(rho * p.selection_share, len(pairs))
        sigma_tree = 0.0 if rho is None else syn.noise_sigma(rho * (1 - p.selection_share), len(names) - 2)

        def noisy_total(measured: list[tuple[int, int]], sigma: float, kind: str) -> dict[tuple[int, int], np.ndarray]:
            vectors = {site: syn.noised(syn.triple_counts(codes[site], sizes, label, measured), sigma, len(hospitals)) for site in hospitals}
            return syn.split_tables(masked_total(ctx, vectors, kind), sizes, label, measured)

        selection = noisy_total(pairs, sigma_selection, "synthesize.selection")
        tree = syn.maximum_spanning_tree({pair: syn.conditional_mutual_information(table) for pair, table in selection.items()})
        announced = json.dumps([[names[i], names[j]] for i, j in tree]).encode()
        for site in hospitals:
            ctx.send(COORDINATOR, site, "synthesize.tree", announced, Protection.DP)
        measured = noisy_total(tree, sigma_tree, "synthesize.tree-marginals")
        tables = {edge: syn.combine(selection[edge], sigma_selection, measured[edge], sigma_tree) for edge in tree}
        rows = max(1, round(float(np.mean([table.sum() for table in tables.values()]))))
        model = syn.TreeModel.fit(sizes, label, tables, prior=p.smoothing * syn.combined_sigma(sigma_selection, sigma_tree))
        rng = ctx.rng("sample")
        sampled = model.sample(rows, rng)
        import polars as pl

        frame = pl.DataFrame([column.decode(sampled[:, i], name, rng) for i, (name, column) in enumerate(p.columns.items())])
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        ctx.releases[f"{p.into}.parquet"] = buffer.getvalue()
        spent = {"epsilon": p.epsilon, "delta": p.delta, "rho": rho, "sigma_selection": sigma_selection, "sigma_tree": sigma_tree}
        ctx.manifest["dp"] = {**spent, "mechanism": "Gaussian (discrete, distributed over the sites), zCDP, Bun-Steinke conversion"}
        ctx.results[GENERATOR] = {
            **spent,
            "rows": rows,
            "sites": len(hospitals),
            "tree": [f"{names[i]} – {names[j]}" for i, j in tree],
            "label": p.label,
            "smoothing": p.smoothing,
        }
        for done, site in enumerate(hospitals, start=1):
            received = ctx.send(COORDINATOR, site, "synthesize.table", buffer.getvalue(), Protection.DP, row_level=True)
            ctx.publish(site, self._at_site(ctx, site, pl.read_parquet(io.BytesIO(received)), codes[site]))
            ctx.progress(done, len(hospitals), site)

    def _codes(self, frame: Any, site: str) -> Any:
        """A site's rows as bin codes, one column per declared column (errors name the site, table and column)."""
        import numpy as np

        where = str(TableRef(site, self.params.table))
        missing = [name for name in self.params.columns if name not in frame.columns]
        if missing:
            from workbench.privacy.synthetic import SyntheticDataError

            raise SyntheticDataError(f"{where}: no column(s) {', '.join(missing)} to synthesize")
        return np.column_stack([column.encode(frame.get_column(name), where) for name, column in self.params.columns.items()])

    def _points(self, frame: Any, codes: Any) -> Any:
        """Rows as points for distances and correlations: numeric values as they are, categories by their codes."""
        from workbench.privacy.synthetic_quality import embed

        values = {
            name: frame.get_column(name).cast(float).to_numpy() if column.edges is not None else codes[:, i]
            for i, (name, column) in enumerate(self.params.columns.items())
        }
        return embed(values, list(self.params.columns.values()))

    def _at_site(self, ctx: StepContext, site: str, synthetic: Any, train_codes: Any) -> dict[str, Any]:
        """Keep the table, train on it, and score it against this site's own rows."""
        from workbench.models.model import fit_model
        from workbench.privacy import synthetic_quality as quality

        p, store = self.params, ctx.store(site)
        store.put_table(p.into, synthetic)
        where = TableRef(site, p.into)
        store.put(
            model_key(p.save_as),
            fit_model(design_matrix(synthetic, p.features, where), label_vector(synthetic, p.label, where), p.features, p.model, ctx.rng(site)),
        )
        frame = store.table(p.table)
        train = split_part(frame, TableRef(site, p.table), test=False)
        held_out = split_part(frame, TableRef(site, p.table), test=True)
        held_codes, synthetic_codes = self._codes(held_out, site), self._codes(synthetic, site)
        sizes = [column.size for column in p.columns.values()]
        rng = ctx.rng("quality", site)
        held_points, synthetic_points = self._points(held_out, held_codes), self._points(synthetic, synthetic_codes)
        return {
            "synthetic_rows": synthetic.height,
            "held_out_rows": held_out.height,
            "fidelity": quality.marginal_distances(held_codes, synthetic_codes, sizes)
            | {"correlation_gap": quality.correlation_gap(held_points, synthetic_points), "pmse": quality.propensity_mse(held_points, synthetic_points, rng)},
            "real_vs_real": quality.marginal_distances(held_codes, train_codes, sizes),
            "privacy": quality.closest_records(synthetic_points, self._points(train, train_codes), held_points, rng),
        }

    @classmethod
    def headline(cls, results: dict[str, Any]) -> str:
        generator = results.get(GENERATOR, {})
        budget = "ε = ∞ (no noise)" if generator.get("epsilon") is None else f"ε = {generator['epsilon']:g}, δ = {generator['delta']:g}"
        return f"{generator.get('rows', 0)} synthetic rows from {generator.get('sites', 0)} sites at {budget}; tree of {len(generator.get('tree', []))} pairs"

    @classmethod
    def summarize(cls, results: dict[str, Any]) -> list[Block]:
        generator = results[GENERATOR]
        sites = {site: figures for site, figures in results.items() if site != GENERATOR}
        budget = (
            "ε = ∞: no noise; a reference, not private"
            if generator["epsilon"] is None
            else f"ε = {generator['epsilon']:g}, δ = {generator['delta']:g} (zCDP ρ = {generator['rho']:.4f}); per-cell noise σ "
            f"{generator['sigma_selection']:.1f} for choosing the tree, {generator['sigma_tree']:.1f} for its pairs"
        )
        blocks: list[Block] = [
            Table(
                "Synthetic data: the generator",
                ["rows", "sites", "privacy", "tree of pairs"],
                [[generator["rows"], generator["sites"], budget, ", ".join(generator["tree"])]],
                note="Every count was noised at the sites and summed by masking; the coordinator saw noisy totals only.",
            ),
            Table(
                "Synthetic data: fidelity against each hospital's held-out rows",
                ["site", "held out", "1-way TV mean (max)", "2-way TV mean (max)", "same-site training rows: 2-way TV mean", "correlation gap", "pMSE"],
                [
                    [
                        site,
                        f["held_out_rows"],
                        f"{f['fidelity']['tv_1way_mean']:.3f} ({f['fidelity']['tv_1way_max']:.3f})",
                        f"{f['fidelity']['tv_2way_mean']:.3f} ({f['fidelity']['tv_2way_max']:.3f})",
                        f"{f['real_vs_real']['tv_2way_mean']:.3f}",
                        round(f["fidelity"]["correlation_gap"], 3),
                        round(f["fidelity"]["pmse"], 4),
                    ]
                    for site, f in sites.items()
                ],
                note="Total-variation distance on the declared bins (0: same distribution); the site's own training rows against its "
                "held-out rows are the yardstick of sampling noise at that size. pMSE: 0 when a classifier cannot tell synthetic from real.",
            ),
            Table(
                "Synthetic data: closeness to real rows",
                [
                    "site",
                    "rows compared",
                    "share closer to a training row than a held-out one",
                    "median DCR train",
                    "median DCR held out",
                    "median NNDR train",
                    "median NNDR held out",
                ],
                [
                    [
                        site,
                        f["privacy"]["compared_rows"],
                        round(f["privacy"]["dcr_share_closer_to_train"], 3),
                        round(f["privacy"]["dcr_train_median"], 4),
                        round(f["privacy"]["dcr_holdout_median"], 4),
                        round(f["privacy"]["nndr_train_median"], 3),
                        round(f["privacy"]["nndr_holdout_median"], 3),
                    ]
                    for site, f in sites.items()
                ],
                note="0.5 when synthetic rows are no closer to the rows they were built from than to rows they never saw.",
            ),
        ]
        return blocks
