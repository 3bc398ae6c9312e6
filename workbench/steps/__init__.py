"""Techniques as recipe steps. Importing this package registers every built-in step kind."""

from workbench.steps import audit, ckks_keys, encrypted_inference, evaluate, fl_train, local_train, pooled_train, psi_link, secure_sum, split, synthesize  # noqa: F401  (registration side effect)
from workbench.steps.base import REGISTRY, SiteStep, Step, StepParams, register

__all__ = ["REGISTRY", "SiteStep", "Step", "StepParams", "register"]
