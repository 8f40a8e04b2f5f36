"""Sweeps, reports and published tables; run the scripts from the repository root."""
