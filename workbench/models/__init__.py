"""Model families with flat parameters, and where a party keeps its models."""


def model_key(name: str) -> str:
    """The name under which a party's store keeps model `name` (e.g. "local", "federated")."""
    return f"model/{name}"
