"""The GitHub integration: workflows, the composite action, pre-commit hooks (offline)."""
