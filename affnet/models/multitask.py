"""Placeholder: this family's configurations are being written."""

CONFIGS = {}
