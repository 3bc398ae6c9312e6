"""Flower's server strategies by recipe name, and the parameters each takes; importable without Flower.

`fl_train`'s parameters and the federated plan share `StrategyFields`, so a recipe and the plan its
parties receive are validated by the same rules. `workbench.fl.strategy` builds the Flower class named
here, as Flower implements it, with the workbench's sampling and quorum rules in front of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

StrategyName = Literal["fedavg", "fedprox", "fedavgm", "fedadagrad", "fedadam", "fedyogi"]


@dataclass(frozen=True)
class StrategySpec:
    flower: str
    """The class in `flwr.serverapp.strategy`."""
    takes: dict[str, str] = field(default_factory=dict)
    """Recipe field -> Flower's keyword for it (the server learning rate is Flower's `eta` for FedOpt strategies)."""
    needs: tuple[str, ...] = ()
    """Fields that must be set (differ from their default) for the strategy to be itself rather than FedAvg."""
    server_step: bool = False
    """Whether Flower's strategy moves the global model itself from the weighted average (learning rate, momentum,
    adaptive moments): it then needs that average in the clear at the aggregator."""


_FEDOPT = {"server_learning_rate": "eta", "tau": "tau"}
_ADAPTIVE = {**_FEDOPT, "beta_1": "beta_1", "beta_2": "beta_2"}
STRATEGIES: dict[str, StrategySpec] = {
    "fedavg": StrategySpec("FedAvg"),
    "fedprox": StrategySpec("FedProx", {"proximal_mu": "proximal_mu"}, needs=("proximal_mu",)),
    "fedavgm": StrategySpec("FedAvgM", {"server_learning_rate": "server_learning_rate", "server_momentum": "server_momentum"}, server_step=True),
    "fedadagrad": StrategySpec("FedAdagrad", _FEDOPT, server_step=True),
    "fedadam": StrategySpec("FedAdam", _ADAPTIVE, server_step=True),
    "fedyogi": StrategySpec("FedYogi", _ADAPTIVE, server_step=True),
}
"""Every `StrategyName`, with what it takes (tests/fl/test_strategies.py keeps the two in step)."""


class StrategyFields(BaseModel):
    """The server strategy and its parameters; each parameter is refused, by name, for a strategy that does not take it."""

    strategy: StrategyName = Field(
        "fedavg",
        description="Flower's server strategy: fedavg; fedprox (a proximal term in each site's "
        "objective); fedavgm (server momentum); fedadagrad, fedadam, fedyogi (adaptive server optimizers, "
        "Reddi et al. 2021).",
    )
    proximal_mu: float = Field(0.0, ge=0.0, validate_default=True, description="FedProx's proximal weight mu (fedprox only, > 0).")
    server_learning_rate: float | None = Field(
        None,
        gt=0.0,
        description="Server step size: Flower's eta for fedadagrad, fedadam and "
        "fedyogi (default 0.1, 0.1, 0.01), server_learning_rate for fedavgm (default 1); null: "
        "Flower's default.",
    )
    server_momentum: float | None = Field(None, ge=0.0, lt=1.0, description="FedAvgM's server momentum; null: Flower's default (0).")
    tau: float | None = Field(None, gt=0.0, description="Adaptivity of fedadagrad, fedadam and fedyogi (Flower's tau); null: Flower's default (1e-3).")
    beta_1: float | None = Field(None, ge=0.0, lt=1.0, description="First-moment decay of fedadam and fedyogi; null: Flower's default (0.9).")
    beta_2: float | None = Field(None, ge=0.0, lt=1.0, description="Second-moment decay of fedadam and fedyogi; null: Flower's default (0.99).")

    @field_validator("proximal_mu", "server_learning_rate", "server_momentum", "tau", "beta_1", "beta_2")
    @classmethod
    def _taken_by_the_strategy(cls, value: Any, info: ValidationInfo) -> Any:
        """A parameter the strategy ignores would be silently without effect: refuse it, naming who takes it."""
        strategy, name = info.data.get("strategy"), str(info.field_name)
        if strategy is None:  # the strategy itself is invalid, and reported as such
            return value
        spec, unset = STRATEGIES[strategy], value == cls.model_fields[name].default
        if unset and name in spec.needs:
            raise ValueError(f"strategy {strategy} needs {name} > 0 (e.g. 0.01)")
        if not unset and name not in spec.takes:
            users = [other for other, s in STRATEGIES.items() if name in s.takes]
            raise ValueError(
                f"{name} is a parameter of {', '.join(users)}; strategy {strategy} does not take it (set strategy: {' or '.join(users)} to use it)"
            )
        return value

    def strategy_parameters(self) -> dict[str, float]:
        """The strategy's parameters the recipe set; the others take Flower's defaults."""
        defaults = type(self).model_fields
        return {name: value for name in STRATEGIES[self.strategy].takes if (value := getattr(self, name)) != defaults[name].default}

    def flower_arguments(self) -> dict[str, float]:
        """`strategy_parameters` under Flower's keywords."""
        takes = STRATEGIES[self.strategy].takes
        return {takes[name]: value for name, value in self.strategy_parameters().items()}


STRATEGY_FIELDS = tuple(StrategyFields.model_fields)
