"""Comparison: customers against the population per segment, and the mailing selection."""
