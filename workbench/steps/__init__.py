"""Techniques as recipe steps. Importing this package registers every built-in step kind."""

from workbench.steps import (  # noqa: F401  (registration side effect)
    audit,
    ckks_keys,
    encrypted_inference,
    evaluate,
    fl_train,
    local_train,
    pooled_train,
    psi_link,
    secure_sum,
    split,
    synthesize,
    vfl_train,
)
from workbench.steps.base import REGISTRY, SiteStep, Step, StepParams, register

__all__ = ["REGISTRY", "SiteStep", "Step", "StepParams", "register"]
