"""Vertical federated learning: parties that hold different columns of the same people train one model (protocol.py)."""
