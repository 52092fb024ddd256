"""Test-bed fixtures (placeholder until written)."""
