"""Training: optimizers and schedules (more of the loop arrives with issue #3)."""
