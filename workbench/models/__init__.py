"""Model families with flat parameters, and where a party keeps its models."""


def model_key(name: str) -> str:
    """The name under which a party's store keeps model `name` (e.g. "local", "federated")."""
    return f"model/{name}"


def split_model_ref(ref: str) -> tuple[str, str | None]:
    """`"local@cleveland"` -> ("local", "cleveland"): the model `local` that party cleveland saved; a bare name is each
    site's own model of that name (owner None)."""
    name, _, owner = ref.partition("@")
    return name, owner or None
