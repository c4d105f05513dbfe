"""Numbers and names shared by several layers, defined once.

Everything here is a plain value: importing it costs nothing, so the presentation layer and the
command line can use it without pulling in the analysis (scikit-learn, joblib).
"""
from __future__ import annotations

SET_ASIDE = -1  # segment id of the people set aside for too much missing data

# Comparison of customers with the population (analysis.compare.shares).
ALPHA = 0.05  # family-wise error rate of the verdicts (Holm) and 1 - level of the intervals
MIN_EFFECT = 0.10  # a verdict also needs the index outside 100 +- 10%

# Choice of the number of segments (analysis.segment.kselect).
STABLE_ARI = 0.90  # refits agreeing at least this much (adjusted Rand index) count as reproducible

# The results folder.
RESULTS_FILE = "results.json"
MODEL_FILE = "model.joblib"
TABLES_FOLDER = "tables"

# Sizes of the real AZDIAS subset: the demonstration data's default size.
REAL_POPULATION = 891_211
REAL_CUSTOMERS = 191_652

# After a data refresh (analysis.segment.matching, analysis.compare.changes).
MIN_OVERLAP = 0.5  # Jaccard overlap below which a new segment is not the same as a previous one
PSI_MODERATE = 0.10  # population stability index: below = stable, 0.10-0.25 = moderate shift
PSI_MAJOR = 0.25  # ... above = major shift (refit recommended when the segments shift this much)
HISTORY_FOLDER = "history"
