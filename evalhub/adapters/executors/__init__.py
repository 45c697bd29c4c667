"""Executors: where `evalhub run-unit` runs."""
