"""Privacy audits of released models: how much a model gives away about the rows it was trained on."""
