"""Whom to mail person by person: the lookalike score beside the segments."""
