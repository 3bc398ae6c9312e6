"""PPML Workbench: privacy-preserving ML pipelines across parties that may not pool their data."""

__version__ = "0.1.0"
