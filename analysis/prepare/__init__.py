"""Preparation: cleaning fitted on the population, then scaling, filling and PCA."""
