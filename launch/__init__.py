"""Thin entry points: train, evaluate, export, predict, demo (logic in affnet.training)."""
