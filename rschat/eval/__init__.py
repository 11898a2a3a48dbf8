"""Metrics and benchmark runners over manifests of real data."""
