"""Federation failures, said in terms of sites rather than Flower node ids."""

from workbench.errors import WorkbenchError


class FederationError(WorkbenchError, RuntimeError):
    """A site stopped answering, never connected, or raised; the message names it and what to do."""
