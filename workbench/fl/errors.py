"""Federation failures, said in terms of sites rather than Flower node ids."""


class FederationError(RuntimeError):
    """A site stopped answering, never connected, or raised; the message names it and what to do."""
