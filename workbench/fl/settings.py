"""Settings of federated training that a recipe holds, importable without Flower.

`fl_train`'s parameters are validated whenever a recipe loads (`workbench validate`, the builder); the types they
use live here, apart from the runtimes that need Flower, so that loading a recipe does not start Flower.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RuntimeName = Literal["embedded", "simulation", "deployment"]
"""embedded (in-process), simulation (Flower's engine on Ray) or deployment (a SuperLink and SuperNodes)."""


class DeploymentSettings(BaseModel):
    """Where the SuperLink is; by default the workbench starts one, and the sites' SuperNodes, on loopback."""

    model_config = ConfigDict(extra="forbid")

    superlink: str | None = Field(None, description="host:port of a running SuperLink; null starts a local federation on loopback.")
    root_certificates: str | None = Field(None, description="CA certificate (PEM) to verify the SuperLink's TLS certificate.")
    insecure: bool = Field(False, description="Talk to a remote SuperLink without TLS (a local federation always uses TLS and SuperNode authentication).")
    poll: float = Field(0.1, gt=0.0, le=5.0, description="Seconds between polls of SuperNodes and ClientApp workers.")
