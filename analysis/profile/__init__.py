"""Profiles: how each segment differs from the population, and what to do about it."""
