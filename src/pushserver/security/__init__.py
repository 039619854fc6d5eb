"""Secrets at rest and API keys."""
