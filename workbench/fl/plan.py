"""The federated plan: everything server and clients must agree on, sent as JSON.

One object travels to every runtime unchanged (in-process, Ray, separate
processes on other machines), so the three runtimes cannot drift apart in
what they train.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pydantic import ConfigDict, Field

from workbench.crypto.secagg import SecAggParams
from workbench.fl.aggregation import AggregationName
from workbench.fl.aggregation.plain import Plain
from workbench.fl.strategies import StrategyFields
from workbench.models.features import FeatureSpec
from workbench.models.model import ModelSpec
from workbench.privacy.dp_params import DPParams


class FLPlan(StrategyFields):
    model_config = ConfigDict(extra="forbid", frozen=True)

    server: str = Field(description="The aggregator party, as the ledger names it.")
    parties: list[str] = Field(description="The training sites, in a fixed order.")
    features: FeatureSpec
    label: str
    model: ModelSpec
    rounds: int = Field(ge=1)
    local_epochs: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    batch_size: int | None = Field(ge=1, description="None: the whole local training set.")
    fraction_train: float = Field(gt=0, le=1)
    min_available_clients: int = Field(ge=1)
    seed: int
    node_timeout: float = Field(gt=0, description="Seconds to wait for a site that should be there before giving up on it.")
    aggregation: AggregationName = Field(Plain.name, description="How updates are combined (workbench.fl.aggregation): none, ckks, ...")
    dp: DPParams | None = Field(
        None,
        description="Level sample: DP-SGD at every site, each with its own accountant. Level client: the aggregator clips and "
        "noises the updates (Flower's server-side fixed clipping), the sites train by plain SGD. None: no DP.",
    )
    secagg: SecAggParams | None = Field(None, description="Shares, threshold and quantization of aggregation secagg; None: its defaults.")
    key_holder: str | None = Field(
        None,
        description="A party that trains nothing but alone holds the secret key and decrypts masked sums (CKKS under custody key_holder); None: no such party.",
    )

    @property
    def sample_dp(self) -> DPParams | None:
        """The DP-SGD each site trains with (level sample); None: the sites train by plain SGD."""
        return self.dp if self.dp is not None and self.dp.level == "sample" else None

    @property
    def client_dp(self) -> DPParams | None:
        """The aggregator's clipping and noise (level client); None: it averages the updates as they came."""
        return self.dp if self.dp is not None and self.dp.level == "client" else None

    def param_count(self) -> int:
        """Length of the flat parameter vector, known to every site without seeing one."""
        return _param_count(self.model, len(self.features.names()))


@lru_cache(maxsize=32)
def _param_count(model: ModelSpec, n_inputs: int) -> int:
    import numpy as np  # loads when a plan is sized, not when a recipe is validated

    return len(model.build().init_params(n_inputs, np.random.default_rng(0)))


def training_key(model: str) -> str:
    """The store item under which a site keeps how federated model `model` was trained (a `FederatedTraining`)."""
    return f"fl_training/{model}"


@dataclass(frozen=True)
class FederatedTraining:
    """What a site knows of the federation that trained one of its models: the plan every node was told, and the global
    model after round 1 as the aggregator read it (empty where it read only ciphertexts). It is kept so that the audit can
    reproduce, at the site, the first update the aggregator received and what it read of the round."""

    plan: FLPlan
    first_global: tuple[float, ...]
