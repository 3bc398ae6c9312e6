"""Differentially private synthetic rows in the style of MST (McKenna, Miklau and Sheldon, 2021): noisy marginals, a
tree of the strongest pairs, rows sampled from the tree, with the label a parent of every column.

MST fits a tree over all columns, which leaves the label joined to one column only: a model trained on its rows learns
the label through that one neighbour (on the synthetic cohort, 0.04 AUC short of training on real rows even without
noise). Here the label is a parent of every column and the tree runs among the others, conditioned on it: a
tree-augmented naive Bayes structure, the one PrivBayes builds at degree 2 with the label first. Every measured marginal
is then 3-way (label, column, column), at the same cost in privacy as a 2-way one: a row still adds one to one cell.

Three phases, each a function here with no recipe or party concerns (the `synthesize` step runs them across sites):

1. Selection. For every pair of non-label columns, the (label, pair) marginal is measured with Gaussian noise, at a
   share of the budget; the maximum spanning tree of their conditional mutual information given the label (from the
   noisy tables) picks d - 2 pairs. MST proper selects with the exponential mechanism on the true marginals' errors,
   which a federation cannot score without pooling the true marginals; measuring every pair is itself a Gaussian
   mechanism, so selection stays post-processing of noisy counts.
2. Measurement. The tree's pairs are measured again with the rest of the budget; each edge's two measurements are
   averaged by inverse variance.
3. Generation. The label from its marginal, the tree's root column given the label, then each child given its parent
   and the label, all from the (clipped, normalized) noisy tables: exact inference on this structure, which is what
   Private-PGM would compute for it (it needs JAX here; a tree needs none of it).

Accounting is in zero-concentrated DP (Bun and Steinke, 2016): a row adds one to one cell of each of m marginals, so
the vector of m marginals has L2 sensitivity sqrt(m), and Gaussian noise of sigma per cell costs rho = m / (2 sigma^2);
rhos add, and rho converts to (epsilon, delta) by epsilon = rho + 2 sqrt(rho log(1/delta)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workbench.errors import WorkbenchError

if TYPE_CHECKING:  # numpy and polars load where they are used: `workbench validate` reads ColumnBins only
    import numpy as np
    import polars as pl

Pair = tuple[int, int]


class SyntheticDataError(WorkbenchError, ValueError):
    """A column that cannot be discretized as declared (a value outside its levels, a missing value, a wrong type)."""


class ColumnBins(BaseModel):
    """How one column is discretized: bin edges for a numeric column, or its levels (categories, flags, small counts)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    edges: list[float] | None = Field(
        None, min_length=3, max_length=65, description="Increasing bin edges, outer bounds included; values beyond them fall in the outer bins."
    )
    levels: list[bool | int | str] | None = Field(None, min_length=2, max_length=64, description="Every value the column takes, in order.")
    missing: bool = Field(False, description="A bin of its own for missing values, released as missing (else a missing value is an error).")

    @model_validator(mode="after")
    def _one_of_them(self) -> ColumnBins:
        if (self.edges is None) == (self.levels is None):
            raise ValueError("give a column either edges (numeric) or levels (categories), not both or neither")
        if self.edges is not None and any(b <= a for a, b in zip(self.edges, self.edges[1:])):
            raise ValueError(f"edges must increase strictly, got {self.edges}")
        if self.levels is not None and len({repr(level) for level in self.levels}) != len(self.levels):
            raise ValueError(f"levels must be distinct, got {self.levels}")
        return self

    @property
    def values(self) -> int:
        """Bins of present values; the missing bin, if any, comes after them."""
        return len(self.levels) if self.levels is not None else len(self.edges or ()) - 1

    @property
    def size(self) -> int:
        return self.values + self.missing

    def encode(self, series: pl.Series, where: str) -> np.ndarray:
        """Each value's bin (0..size-1), or an error naming the column and what does not fit."""
        import numpy as np
        import polars as pl

        if series.null_count() and not self.missing:
            raise SyntheticDataError(f"{where}: column {series.name!r} has {series.null_count()} missing values; impute or drop them, or declare missing: true")
        absent = series.is_null().to_numpy()
        present = series.drop_nulls()
        if self.edges is not None:
            if not series.dtype.is_numeric():
                raise SyntheticDataError(f"{where}: column {series.name!r} has edges, so it must be numeric; got {series.dtype}")
            codes = np.full(len(series), self.values, dtype=np.int64)
            codes[~absent] = np.searchsorted(np.asarray(self.edges[1:-1]), present.cast(float).to_numpy(), side="right")
            return codes
        levels = list(self.levels or ())
        kinds = {type(level) for level in levels}
        fits = {bool: series.dtype == pl.Boolean, str: series.dtype in (pl.Utf8, pl.Categorical), int: series.dtype.is_integer()}
        if len(kinds) != 1 or not fits[kinds.pop()]:
            raise SyntheticDataError(f"{where}: column {series.name!r} is {series.dtype}, but its levels {levels} are not all of that kind")
        index: dict[object, int] = {level: i for i, level in enumerate(levels)} | {None: self.values}
        values = series.cast(pl.Utf8).to_list() if series.dtype == pl.Categorical else series.to_list()
        unknown = sorted({repr(value) for value in values if value not in index})
        if unknown:
            raise SyntheticDataError(
                f"{where}: column {series.name!r} holds value(s) {', '.join(unknown[:5])} not among its levels {levels}; declare them or recode the column"
            )
        return np.fromiter((index[value] for value in values), dtype=np.int64, count=len(values))

    def decode(self, codes: np.ndarray, name: str, rng: np.random.Generator) -> pl.Series:
        """Values for bins: the level itself, or a value drawn uniformly within the bin (the bins are all that was
        measured); the missing bin as missing."""
        import numpy as np
        import polars as pl

        if self.levels is not None:
            return pl.Series(name, [None if code == self.values else self.levels[code] for code in codes.tolist()])
        edges = np.asarray(self.edges)
        inside = np.minimum(codes, self.values - 1)
        drawn = rng.uniform(edges[inside], edges[inside + 1])
        return pl.Series(name, drawn).set(pl.Series(codes == self.values), None) if self.missing else pl.Series(name, drawn)


def rho_for(epsilon: float, delta: float) -> float:
    """The zCDP rho whose (epsilon, delta) guarantee by Bun and Steinke's conversion is exactly `epsilon`."""
    log_term = math.log(1 / delta)
    return (math.sqrt(log_term + epsilon) - math.sqrt(log_term)) ** 2


def epsilon_for(rho: float, delta: float) -> float:
    return rho + 2 * math.sqrt(rho * math.log(1 / delta))


def noise_sigma(rho: float, marginals: int) -> float:
    """Per-cell Gaussian sigma that measures `marginals` marginals for `rho`: each row is in one cell of each."""
    return math.sqrt(marginals / (2 * rho))


def all_pairs(columns: Sequence[int]) -> list[Pair]:
    """Every unordered pair of `columns` (indices), in order."""
    return [(i, j) for a, i in enumerate(columns) for j in columns[a + 1 :]]


def triple_counts(codes: np.ndarray, sizes: Sequence[int], label: int, pairs: Sequence[Pair]) -> np.ndarray:
    """The (label, i, j) tables of `pairs`, each sizes[label] x sizes[i] x sizes[j] in row-major order, one after the
    other (int64): the layout every site sums in and `split_tables` reads back."""
    import numpy as np

    tables = [np.bincount((codes[:, label] * sizes[i] + codes[:, i]) * sizes[j] + codes[:, j], minlength=sizes[label] * sizes[i] * sizes[j]) for i, j in pairs]
    return np.concatenate(tables).astype(np.int64) if tables else np.zeros(0, dtype=np.int64)


def split_tables(flat: np.ndarray, sizes: Sequence[int], label: int, pairs: Sequence[Pair]) -> dict[Pair, np.ndarray]:
    """`triple_counts`'s layout back into one (label, i, j) table a pair."""
    tables, start = {}, 0
    for i, j in pairs:
        cells = sizes[label] * sizes[i] * sizes[j]
        tables[(i, j)] = flat[start : start + cells].reshape(sizes[label], sizes[i], sizes[j]).astype(float)
        start += cells
    return tables


def discrete_gaussian(sigma: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """Integers from the discrete Gaussian N_Z(0, sigma^2) (Canonne, Kamath and Steinke, 2020, by rejection from a discrete
    Laplace). Floating-point acceptance probabilities, not the paper's exact arithmetic: fine for noise, not a proof."""
    import numpy as np

    out = np.zeros(size, dtype=np.int64)
    if sigma == 0 or size == 0:
        return out
    t = math.floor(sigma) + 1
    pending = np.arange(size)
    while len(pending):
        q = 1 - math.exp(-1 / t)
        laplace = rng.geometric(q, len(pending)) - rng.geometric(q, len(pending))  # P(y) ∝ exp(-|y| / t)
        accept = rng.random(len(pending)) < np.exp(-((np.abs(laplace) - sigma**2 / t) ** 2) / (2 * sigma**2))
        out[pending[accept]] = laplace[accept]
        pending = pending[~accept]
    return out


def noised(counts: np.ndarray, sigma: float, sites: int) -> np.ndarray:
    """One site's counts with its share of the noise: discrete Gaussian of sigma / sqrt(sites), from the operating system's
    randomness, so that the sites' noises sum to sigma in the total and no site knows the others' share."""
    import secrets

    import numpy as np

    share = discrete_gaussian(sigma / math.sqrt(sites), len(counts), np.random.default_rng(secrets.randbits(128)))
    noisy: np.ndarray = counts + share
    return noisy


def conditional_mutual_information(table: np.ndarray) -> float:
    """I(i; j | label) of a (noisy) (label, i, j) count table, negatives clipped: what the pair says about each other
    beyond what the label says, in nats."""
    import numpy as np

    joint = np.clip(table, 0, None)
    total = joint.sum()
    if total <= 0:
        return 0.0
    joint = joint / total
    label = joint.sum(axis=(1, 2), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = joint.sum(axis=2, keepdims=True) * joint.sum(axis=1, keepdims=True) / label
    inside = (joint > 0) & (expected > 0)
    return float((joint[inside] * np.log(joint[inside] / expected[inside])).sum())


def maximum_spanning_tree(weights: dict[Pair, float]) -> list[Pair]:
    """Kruskal's algorithm: the pairs of largest total weight that connect every column named in `weights`, no cycle."""
    parent = {node: node for pair in weights for node in pair}

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    tree = []
    for (i, j), _ in sorted(weights.items(), key=lambda item: (-item[1], item[0])):
        a, b = root(i), root(j)
        if a != b:
            parent[a] = b
            tree.append((i, j))
    return tree


def combined_sigma(first_sigma: float, second_sigma: float) -> float:
    """The noise left in `combine`'s average of two measurements."""
    if first_sigma == 0 or second_sigma == 0:
        return 0.0
    return float((first_sigma**-2 + second_sigma**-2) ** -0.5)


def combine(first: np.ndarray, first_sigma: float, second: np.ndarray, second_sigma: float) -> np.ndarray:
    """Two noisy measurements of one table, averaged by inverse variance (either sigma may be 0: exact)."""
    if first_sigma == 0 or second_sigma == 0:
        return first if first_sigma == 0 else second
    w1, w2 = 1 / first_sigma**2, 1 / second_sigma**2
    combined: np.ndarray = (w1 * first + w2 * second) / (w1 + w2)
    return combined


@dataclass(frozen=True)
class TreeModel:
    """A distribution over the columns' bins: P(label), P(root | label), and P(child | parent, label) along a tree."""

    sizes: tuple[int, ...]
    label: int
    order: tuple[tuple[int, int | None], ...]
    """(column, parent) in sampling order after the label; the root's parent is None."""
    label_marginal: np.ndarray
    conditionals: dict[int, np.ndarray]
    """column -> P(column | label) (the root: sizes[label] x sizes[root]) or P(column | label, parent) (label x parent x column)."""

    @classmethod
    def fit(cls, sizes: Sequence[int], label: int, tables: dict[Pair, np.ndarray], prior: float = 0.0) -> TreeModel:
        """From one noisy (label, i, j) table per tree edge: negatives clipped to zero, each conditional normalized (one
        left empty by clipping takes the column's marginal given the label, or its marginal)."""
        import numpy as np

        columns = sorted({node for pair in tables for node in pair})
        if len(columns) != len(sizes) - 1:
            raise ValueError(f"the tables connect {len(columns)} of the {len(sizes) - 1} columns besides the label; a tree over all is needed")
        neighbours: dict[int, list[int]] = {i: [] for i in columns}
        for i, j in tables:
            neighbours[i].append(j)
            neighbours[j].append(i)
        root = columns[0]
        order: list[tuple[int, int | None]] = [(root, None)]
        seen, queue = {root}, [root]
        while queue:
            node = queue.pop(0)
            for child in sorted(neighbours[node]):
                if child not in seen:
                    seen.add(child)
                    order.append((child, node))
                    queue.append(child)
        if len(seen) != len(columns):
            raise ValueError(f"the tables connect {len(seen)} of the {len(columns)} columns besides the label; a tree over all is needed")

        def oriented(parent: int, child: int) -> np.ndarray:
            """The (label, parent, child) table, clipped."""
            table = tables[(parent, child)] if (parent, child) in tables else tables[(child, parent)].transpose(0, 2, 1)
            clipped: np.ndarray = np.clip(table, 0, None)
            return clipped

        def normalized(counts: np.ndarray, fallback: np.ndarray | None = None) -> np.ndarray:
            """Rows of `counts` (last axis) as distributions; an empty row takes `fallback`, else uniform."""
            total = counts.sum(axis=-1, keepdims=True)
            uniform = np.full(counts.shape[-1], 1 / counts.shape[-1]) if fallback is None else fallback
            with np.errstate(invalid="ignore", divide="ignore"):
                shares = counts / total
            return np.where(total > 0, shares, uniform)

        first = next(pair for pair in tables if root in pair)
        root_table = oriented(root, first[1] if first[0] == root else first[0]).sum(axis=2)  # label x root
        label_counts = root_table.sum(axis=1)
        marginal = normalized(root_table.sum(axis=0))
        conditionals = {root: normalized(root_table, marginal)}
        for child, parent in order[1:]:
            assert parent is not None
            table = oriented(parent, child)  # label x parent x child
            given_label = normalized(table.sum(axis=1), normalized(table.sum(axis=(0, 1))))  # label x child
            # `prior` pseudo-counts of P(child | label) in every parent's row: where noise swamps a sparse row (the rare
            # label's), the estimate leans on the better-measured coarser conditional; post-processing, so free in privacy
            conditionals[child] = np.stack([normalized(table[y] + prior * given_label[y], given_label[y]) for y in range(sizes[label])])
        return cls(tuple(sizes), label, tuple(order), normalized(label_counts), conditionals)

    def sample(self, rows: int, rng: np.random.Generator) -> np.ndarray:
        """`rows` x columns bin codes: the label, then each column given its parent's code and the label's."""
        import numpy as np

        codes = np.zeros((rows, len(self.sizes)), dtype=np.int64)
        codes[:, self.label] = rng.choice(self.sizes[self.label], size=rows, p=self.label_marginal)
        for column, parent in self.order:
            y = codes[:, self.label]
            shares = self.conditionals[column][y] if parent is None else self.conditionals[column][y, codes[:, parent]]
            cumulative = np.cumsum(shares, axis=1)
            cumulative[:, -1] = 1.0
            codes[:, column] = (rng.random((rows, 1)) < cumulative).argmax(axis=1)
        return codes
