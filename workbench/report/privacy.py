"""How a DP step's privacy spent reads in the report: one table per step, and what it covers.

Sample level: a row per site, each with its own accountant. Client level (fl_train's second mode): one row, the
aggregator's account for the whole federation, with its own, different, statement of what it covers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.privacy.dp_params import PUBLIC_SCALING, is_client_level
from workbench.report.blocks import Table


def _scaling(public: bool) -> str:
    if public:
        return "The features are scaled by public bounds, so the scaling read no row and is covered too."
    return "It does not cover the standardization: the feature moments left the sites exact (declare features.bounds to scale by public bounds instead)."


SEEDED = (
    " The batches and noise were drawn from the recipe's seed (dp.noise: seeded), so that the run repeats: every party that "
    "knows the recipe can recompute the noise and remove it, and the guarantee holds only against outsiders who do not know the seed."
)


def covers(scaling_public: bool) -> str:
    """What each site's (epsilon, delta) covers at sample level, and what it does not, for the note under the DP table."""
    return (
        "Each site's (epsilon, delta) covers its training rows, against anyone who sees the released model or every update "
        f"the site sent (the aggregator included), for adding or removing one row. {_scaling(scaling_public)} It does not "
        "cover the held-out rows that evaluation scores, hyperparameters tuned on the same rows, rows that repeat a patient, "
        "or repeated runs on the same rows (each spends again)."
    )


def client_covers(scaling_public: bool) -> str:
    """What the aggregator's (epsilon, delta) covers at client level, and what it does not."""
    return (
        "Client-level DP: the (epsilon, delta) covers each site's whole participation (every row it holds, and whether it "
        "took part), against anyone who sees the global model of any round or the model released, for adding or removing "
        "one site. The aggregator is trusted: it saw every update in the clear and added the noise itself (Flower's "
        "server-side fixed clipping; each update clipped to C, the equally weighted average noised with standard deviation "
        "σC/m per coordinate, m the sites sampled). Each round is charged in full (no amplification: the sites sampled "
        f"follow the recipe's seed, which every party knows). {_scaling(scaling_public)} It does not cover the per-site "
        "training loss and held-out metrics each round (sent and published without noise), hyperparameters tuned on the "
        "same data, or repeated runs. With few sites the noise is large next to the average: it suits federations of "
        "hundreds of sites."
    )


def dp_block(spent: Mapping[str, Any]) -> Table:
    """The privacy spent, with every figure needed to recompute it (sigma, C, q, steps or rounds, delta, accountant):
    per site for sample level (`{site: {...}}`), or the aggregator's one account for client level (`{level: client, ...}`)."""
    if is_client_level(spent):
        return Table(
            "Differential privacy spent, client level (the aggregator's account)",
            ["level", "epsilon", "delta", "noise multiplier σ", "clip C (per site update)", "rounds", "sites per round m", "noise std σC/m"],
            [["client", *(spent[key] for key in ("epsilon", "delta", "noise_multiplier", "clip", "rounds", "sites_per_round", "noise_std"))]],
            note=f"Accountant {spent.get('accountant', '?')}. {client_covers(spent.get('scaling') == PUBLIC_SCALING)}",
        )
    accountants = sorted({str(figures.get("accountant", "?")) for figures in spent.values()})
    return Table(
        "Differential privacy spent, per site (sample level)",
        ["site", "epsilon", "delta", "noise multiplier σ", "clip C", "sample rate q", "steps"],
        [[site, f["epsilon"], f["delta"], f["noise_multiplier"], f["clip"], f["sample_rate"], f["steps"]] for site, f in sorted(spent.items())],
        note=f"Sample-level DP: DP-SGD with Poisson sampling; accountant {', '.join(accountants)}. "
        + covers(all(figures.get("scaling") == PUBLIC_SCALING for figures in spent.values()))
        + (SEEDED if any(figures.get("noise") == "seeded" for figures in spent.values()) else ""),
    )
