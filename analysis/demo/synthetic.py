"""A realistic synthetic stand-in for the licensed AZDIAS and CUSTOMERS files.

Without licensed data every command runs on this dataset, so it has to look and behave like the
real thing: same file format, same codes, same traps, and a structure that segmentation can find.
It also plants a known truth, so the pipeline's answers can be checked.

Generative model
----------------
1. **Segments.** Each row belongs to one of seven planted segments or the planted niche
   (``SEGMENTS`` below). The population mix of the seven is uneven (11%..16%); the customer mix
   makes two of them clearly over-represented (index ~185-210), three clearly under-represented
   (~30-35) and two in line (~81). The niche (generator version 3) is 4% of the population at
   index 350, weakly separated from its neighbour: a group an elbow-chosen k merges away and the
   finer *types* must keep.
2. **Latent factors.** A person draws continuous factors around the segment's profile: age in
   years, wealth, urbanity of the area, saver mentality, tradition, online affinity and family
   orientation (spread ``SPREAD``), plus gender, east/west and green-avantgarde flags. Five
   independent area noises (micro cell, PLZ8 cell, community, area wealth, building) let the
   area features of one block agree with each other more than with the person.
3. **Codes.** Every ordinal feature is a noisy linear score of the factors, standardised with
   the population mixture's design moments (not with the sample, so customers really differ)
   and cut at normal quantiles of a target code frequency. ``low_is_strong`` handles the scales
   where code 1 is the strong end (FINANZ_*, SEMIO_*, HH_EINKOMMEN_SCORE, CAMEO wealth, KKK...):
   a wealthy person gets a LOW HH_EINKOMMEN_SCORE, a saver a LOW FINANZ_SPARER. Categorical
   features are multinomial choices; nested features are derived so they stay consistent
   (CAMEO_DEU starts with CAMEO_DEUG, CAMEO_INTL's wealth digit follows CAMEO_DEUG,
   PRAEGENDE_JUGENDJAHRE's movement equals GREEN_AVANTGARDE, LP_*_GROB rolls up LP_*_FEIN).
   The real data's quirks are kept: CAMEO_INTL 11/21/42/53 never occur, GEBAEUDETYP 7 never
   occurs and 5 occurs in the population but never among customers.
4. **Missingness.** Heavy-missing columns as in the real data (TITEL_KZ, AGER_TYP,
   KK_KUNDENTYP, KBA05_BAUMAX, GEBURTSJAHR, ALTER_HH); moderate missingness elsewhere as a mix
   of the summary's missing codes and empty fields; a correlated 'profile unknown' group
   (HEALTH_TYP, SHOPPER_TYP, VERS_TYP = -1, PRAEGENDE_JUGENDJAHRE, NATIONALITAET_KZ = 0).
   About 10% of population rows and 26% of customer rows are *sparse*: every area block
   (building, CAMEO, KBA05, postcode, region, PLZ8, community) is empty - except
   ONLINE_AFFINITAET, which the real sparse rows keep too - and in most of them the household
   block as well. Sparse rows lean towards the young urban segments and are a little younger,
   less thrifty and more online, so a report can show how they differ.
5. **Within-segment gradient** (version 3). Inside the comfortable middle-aged segment, customers
   lean towards the saver end (``CUSTOMER_LEAN``): the segment is in line as a whole, but its
   thrifty end holds far more customers than its spending end, so ranking people (a lookalike
   score) beats mailing whole segments for a reason the tests know. Only customer rows move.

Recoverability is checked with the package's own analysis (``fit_cleaning``, mean impute,
standardise, PCA to 80% of the variance = 58-59 components, ``select_k`` over k = 2..15 with the
pipeline's settings, ``fit_final``). Generator version 2 (before the niche; version 3 at 30,000
rows, seed 0, still picks k = 7, the niche merged away as intended): ``select_k`` picks k = 7 at full size
(891,211 rows, seed 0: elbow at 7, stability 0.99, silhouette 0.10) and at 30,000 rows (seeds
0-7 all pick 7), and the k = 7 partition agrees with the planted one at adjusted Rand index
~0.92 on the non-sparse population rows (~3% of rows land in a neighbouring segment): clearly
recoverable, not trivially. What that took, in the terms of the model above: the segment
profiles are spread so that the pairs k-means used to merge (the affluent savers and the
pensioners, the young renters and the students) are about as far apart as the other
neighbours, so the inertia curve bends at 7 instead of flattening between 5 and 7; the
multinomial choices follow the factors more strongly, so fewer one-hot columns are pure noise;
and gender loads only moderately on SEMIO_*, because a strong binary split inside every segment
is an alternative k-means solution that made refits disagree.

Same seed and sizes give byte-identical files (same platform and numpy). Population and
customers use separate child streams of ``default_rng(seed)``, so the population does not change
when only the customer count does.

Files follow the real ones exactly: ``;``-separated, 85 columns in summary order, no index; a
column with any empty field is written as floats (``2.0``) as pandas did, other columns as ints;
CAMEO and OST_WEST_KZ hold strings. Everything is vectorised and written through the temporary
directory next to ``out_dir``, so an interrupted run never leaves half-written files.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from scipy.special import ndtr

from analysis.constants import REAL_CUSTOMERS, REAL_POPULATION
from analysis.inputs.schema import Feature, load_schema, summary_text

# The sizes of the real AZDIAS subset and customers file: the demo data's default size.
GENERATOR_VERSION = 4  # bump whenever the same seed and sizes would give different files

POPULATION_FILE = "Udacity_AZDIAS_Subset.csv"
CUSTOMERS_FILE = "Udacity_CUSTOMERS_Subset.csv"
SUMMARY_FILE = "AZDIAS_Feature_Summary.csv"
TRUTH_FILE = "planted_truth.json"
LABELS_FILE = "planted_labels.parquet"

REFERENCE_YEAR = 2017  # GEBURTSJAHR's observed maximum: the data's point of view


# --------------------------------------------------------------------------------------------
# Planted segments: the truth the pipeline should recover.
# Factor means are in standard units (age in years); a LOW code is the strong end of FINANZ_*,
# SEMIO_* and the wealth scales, which the feature rules below take care of.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One planted segment: who they are and how common they are in each table."""

    key: str
    name: str
    description: str
    population_share: float
    customer_share: float
    age: tuple[float, float]  # mean and spread in years
    wealth: float
    urban: float
    saver: float
    tradition: float
    online: float
    family: float
    male: float  # probability of being male
    east: float  # probability of living in the former East
    avantgarde: float  # probability of GREEN_AVANTGARDE = 1
    sparse_weight: float  # relative chance of being a sparse (set-aside) row
    niche: bool = False  # a small, weakly separated, over-represented group (see NICHE below)

    @property
    def index(self) -> float:
        """Planted customer index: 100 x customer share / population share."""
        return 100.0 * self.customer_share / self.population_share

    @property
    def representation(self) -> str:
        if self.index >= 150:
            return "over-represented"
        if self.index <= 67:
            return "under-represented"
        return "in line"


SEGMENTS: tuple[Segment, ...] = (
    Segment("affluent_suburban_savers", "Affluent older savers in the suburbs",
            "50-70, high income and purchasing power, keen savers and investors, 1-2 family "
            "homes in the suburbs, traditional, little online",
            population_share=0.11, customer_share=0.23, age=(59, 7), wealth=1.8, urban=0.0,
            saver=1.6, tradition=1.0, online=-0.3, family=0.3, male=0.52, east=0.10,
            avantgarde=0.15, sparse_weight=0.7),
    Segment("young_urban_renters", "Young urban renters, online and spending",
            "28-45, average to good income, flats in dense city districts, spend rather than "
            "save, very online, event-oriented, singles and couples",
            population_share=0.15, customer_share=0.048, age=(36, 5), wealth=0.9, urban=1.8,
            saver=-0.8, tradition=-0.7, online=1.2, family=-1.0, male=0.52, east=0.17,
            avantgarde=0.35, sparse_weight=1.5),
    Segment("rural_families", "Traditional rural families",
            "30-50, families with children in villages and small towns, home-ownership "
            "minded, modest income, family- and duty-oriented",
            population_share=0.16, customer_share=0.13, age=(40, 7), wealth=-0.3, urban=-1.2,
            saver=0.6, tradition=1.0, online=-0.5, family=1.8, male=0.48, east=0.14,
            avantgarde=0.10, sparse_weight=0.8),
    Segment("east_working_class", "East German working class",
            "mostly in the East, 45-70, low income and purchasing power, high local "
            "unemployment, blocks of flats in mid-sized towns, financial minimalists",
            population_share=0.14, customer_share=0.049, age=(56, 9), wealth=-1.0, urban=0.6,
            saver=-0.2, tradition=0.3, online=-0.8, family=0.2, male=0.50, east=0.88,
            avantgarde=0.12, sparse_weight=1.2),
    Segment("comfortable_middle_aged", "Comfortable middle-aged",
            "35-55, good income, towns and suburbs, couples and families, fairly online, "
            "modern rather than traditional, spending rather than saving",
            population_share=0.16, customer_share=0.13, age=(44, 6), wealth=1.0, urban=-0.2,
            saver=-0.5, tradition=-0.7, online=0.9, family=0.3, male=0.50, east=0.12,
            avantgarde=0.20, sparse_weight=0.8),
    Segment("students_young_singles", "Students and young singles",
            "18-27, low income, alone or in flat-shares, urban, very online, pleasure-seeking, "
            "not saving",
            population_share=0.11, customer_share=0.033, age=(21, 3), wealth=-1.8, urban=0.5,
            saver=-0.5, tradition=-0.9, online=1.4, family=-1.0, male=0.50, east=0.20,
            avantgarde=0.30, sparse_weight=2.0),
    Segment("traditional_pensioners", "Traditional pensioners",
            "70+, modest income but savers, religious, dutiful and traditional, offline, "
            "living alone or as couples, long-time residents of small towns",
            population_share=0.13, customer_share=0.24, age=(77, 6), wealth=-0.8, urban=-0.8,
            saver=0.7, tradition=1.3, online=-1.4, family=-1.0, male=0.42, east=0.15,
            avantgarde=0.08, sparse_weight=0.6),
    # The planted niche: 4% of the population, 3.5x over-represented among customers, and about
    # half as far from its nearest planted segment (the comfortable middle-aged) as the planted
    # segments are from each other. At an elbow k it merges into a larger segment; the types
    # must keep it (tests/segment/test_levels.py).
    Segment("young_affluent_families", "Young affluent online families",
            "25-35, good income, families with young children in the suburbs of cities, online "
            "shoppers, neither traditional nor especially modern",
            population_share=0.04, customer_share=0.14, age=(28, 4), wealth=1.3, urban=1.0,
            saver=0.4, tradition=-0.2, online=1.2, family=2.1, male=0.50, east=0.10,
            avantgarde=0.20, sparse_weight=0.3, niche=True),
)

SPREAD = 0.45  # within-segment spread of the continuous factors, in standard units
SPARSE_SHARE = {"population": 0.10, "customers": 0.26}
SPARSE_SHIFT = {"age": -3.0, "saver": -0.3, "online": 0.3}  # sparse rows' person-level tilt
# Within-segment gradient (generator version 3): inside one planted segment, customers lean
# towards one end of a factor, so ranking people (a lookalike score) can beat mailing whole
# segments for a reason the tests know. Customers of the comfortable middle-aged lean towards
# the saver end (in the data: lower FINANZ_SPARER codes); the population is unchanged.
CUSTOMER_LEAN = {"segment": "comfortable_middle_aged", "factor": "saver", "shift": 0.7}

PERSON_FACTORS = ("age", "wealth", "urban", "saver", "tradition", "online", "family",
                  "male", "east", "avantgarde")
AREA_NOISES = ("micro", "plz8", "community", "area_wealth", "building")
LATENTS = PERSON_FACTORS + AREA_NOISES
_AT = {name: i for i, name in enumerate(LATENTS)}


# --------------------------------------------------------------------------------------------
# Feature rules: how the latent factors become codes.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ordinal:
    """An ordinal code as a noisy score of the factors, cut to hit target code frequencies.

    ``drivers`` push towards the *strong* end when ``low_is_strong`` (code 1 = strongest), else
    towards high codes. ``probs`` are the intended population frequencies, lowest code first.
    """

    drivers: Mapping[str, float]
    probs: tuple[float, ...]
    noise: float = 0.7
    low_is_strong: bool = False


_SEMIO = (0.08, 0.12, 0.17, 0.2, 0.18, 0.14, 0.11)
_FIVE = (0.15, 0.2, 0.3, 0.2, 0.15)

ORDINALS: dict[str, Ordinal] = {
    # financial typology: 1 = very high affinity
    "FINANZ_MINIMALIST": Ordinal({"wealth": -0.8, "saver": -0.3}, (0.13, 0.16, 0.24, 0.24, 0.23),
                                 low_is_strong=True),
    "FINANZ_SPARER": Ordinal({"saver": 0.9, "age": 0.4}, (0.15, 0.17, 0.17, 0.23, 0.28),
                             noise=0.6, low_is_strong=True),
    "FINANZ_VORSORGER": Ordinal({"saver": 0.5, "age": -0.6}, (0.1, 0.15, 0.2, 0.22, 0.33),
                                low_is_strong=True),
    "FINANZ_ANLEGER": Ordinal({"wealth": 0.6, "saver": 0.5, "age": 0.2},
                              (0.2, 0.16, 0.2, 0.2, 0.24), low_is_strong=True),
    "FINANZ_UNAUFFAELLIGER": Ordinal({"saver": 0.6, "tradition": 0.4},
                                     (0.16, 0.18, 0.18, 0.23, 0.25), low_is_strong=True),
    "FINANZ_HAUSBAUER": Ordinal({"urban": -0.6, "family": 0.4, "wealth": 0.3},
                                (0.15, 0.15, 0.25, 0.2, 0.25), low_is_strong=True),
    # personality: 1 = highest affinity; gender drives combative/dominant vs family/social/dreamy
    "SEMIO_SOZ": Ordinal({"male": -0.15, "family": 0.3, "tradition": 0.2}, _SEMIO, low_is_strong=True),
    "SEMIO_FAM": Ordinal({"male": -0.1, "family": 0.5, "tradition": 0.4}, _SEMIO, low_is_strong=True),
    "SEMIO_REL": Ordinal({"tradition": 0.9, "age": 0.3}, _SEMIO, low_is_strong=True),
    "SEMIO_MAT": Ordinal({"tradition": 0.4, "saver": 0.3, "wealth": -0.2}, _SEMIO, low_is_strong=True),
    "SEMIO_VERT": Ordinal({"male": -0.25, "tradition": -0.3, "age": -0.2}, _SEMIO, low_is_strong=True),
    "SEMIO_LUST": Ordinal({"tradition": -0.7, "age": -0.3, "male": 0.1}, _SEMIO, low_is_strong=True),
    "SEMIO_ERL": Ordinal({"tradition": -0.6, "age": -0.4, "male": 0.1}, _SEMIO, low_is_strong=True),
    "SEMIO_KULT": Ordinal({"tradition": 0.6, "male": -0.1, "wealth": 0.2}, _SEMIO, low_is_strong=True),
    "SEMIO_RAT": Ordinal({"saver": 0.5, "male": 0.1, "tradition": 0.3}, _SEMIO, low_is_strong=True),
    "SEMIO_KRIT": Ordinal({"male": 0.2, "tradition": -0.2, "age": 0.2}, _SEMIO, low_is_strong=True),
    "SEMIO_DOM": Ordinal({"male": 0.2, "wealth": 0.2, "tradition": -0.1}, _SEMIO, low_is_strong=True),
    "SEMIO_KAEM": Ordinal({"male": 0.3, "tradition": -0.2}, _SEMIO, low_is_strong=True),
    "SEMIO_PFLICHT": Ordinal({"tradition": 0.8, "saver": 0.4, "age": 0.3}, _SEMIO, low_is_strong=True),
    "SEMIO_TRADV": Ordinal({"tradition": 0.9, "age": 0.4, "saver": 0.2}, _SEMIO, low_is_strong=True),
    # other person-level scales (high code = the named end)
    "HEALTH_TYP": Ordinal({"tradition": -0.5, "age": -0.3, "saver": -0.3}, (0.27, 0.36, 0.37), noise=1.0),
    "RETOURTYP_BK_S": Ordinal({"age": 0.5, "tradition": 0.5, "online": -0.4},
                              (0.07, 0.16, 0.22, 0.17, 0.38), noise=0.8),
    # household
    "HH_EINKOMMEN_SCORE": Ordinal({"wealth": 0.9}, (0.08, 0.12, 0.13, 0.14, 0.21, 0.32),
                                  noise=0.45, low_is_strong=True),
    "W_KEIT_KIND_HH": Ordinal({"family": 0.6, "age": -0.6}, (0.07, 0.07, 0.1, 0.16, 0.25, 0.35),
                              low_is_strong=True),
    "WOHNDAUER_2008": Ordinal({"age": 0.7, "urban": -0.3},
                              (0.01, 0.01, 0.012, 0.014, 0.014, 0.018, 0.021, 0.1, 0.8)),
    "KONSUMNAEHE": Ordinal({"urban": -0.8, "building": -0.3}, (0.22, 0.2, 0.2, 0.16, 0.14, 0.07, 0.01)),
    # micro cell (rr3): building mix of the street block
    "KBA05_ANTG1": Ordinal({"urban": -0.85, "micro": -0.5}, (0.3, 0.25, 0.2, 0.15, 0.1)),
    "KBA05_ANTG2": Ordinal({"urban": 0.4, "micro": 0.2}, (0.33, 0.2, 0.2, 0.17, 0.1), noise=0.9),
    "KBA05_ANTG3": Ordinal({"urban": 0.8, "micro": 0.4, "east": 0.2}, (0.5, 0.2, 0.17, 0.13)),
    "KBA05_ANTG4": Ordinal({"urban": 0.8, "micro": 0.4, "east": 0.2}, (0.75, 0.15, 0.1)),
    "KBA05_GBZ": Ordinal({"urban": -0.6, "micro": -0.4}, (0.12, 0.15, 0.3, 0.2, 0.23)),
    # postcode and region (rr1)
    "BALLRAUM": Ordinal({"urban": -0.8, "community": -0.3}, (0.17, 0.1, 0.1, 0.09, 0.1, 0.26, 0.18)),
    "EWDICHTE": Ordinal({"urban": 0.9, "community": 0.3}, (0.11, 0.12, 0.11, 0.2, 0.22, 0.24)),
    "INNENSTADT": Ordinal({"urban": -0.85, "community": -0.3},
                          (0.02, 0.1, 0.12, 0.14, 0.17, 0.12, 0.14, 0.19)),
    "GEBAEUDETYP_RASTER": Ordinal({"urban": -0.6, "building": -0.3}, (0.02, 0.05, 0.22, 0.42, 0.29)),
    "KKK": Ordinal({"wealth": 0.6, "area_wealth": 0.5}, (0.18, 0.28, 0.3, 0.24), low_is_strong=True),
    "MOBI_REGIO": Ordinal({"urban": -0.7, "community": -0.3}, (0.2, 0.18, 0.19, 0.19, 0.2, 0.04)),
    "ONLINE_AFFINITAET": Ordinal({"online": 0.85, "age": -0.2}, (0.07, 0.2, 0.24, 0.2, 0.19, 0.1)),
    "REGIOTYP": Ordinal({"wealth": 0.6, "area_wealth": 0.5}, (0.1, 0.12, 0.1, 0.1, 0.16, 0.27, 0.15),
                        low_is_strong=True),
    # PLZ8 macro cell: smoother version of the micro cell
    "PLZ8_ANTG1": Ordinal({"urban": -0.85, "plz8": -0.45}, (0.02, 0.27, 0.36, 0.28, 0.07)),
    "PLZ8_ANTG2": Ordinal({"urban": 0.5, "plz8": 0.3}, (0.03, 0.24, 0.37, 0.28, 0.08)),
    "PLZ8_ANTG3": Ordinal({"urban": 0.85, "plz8": 0.45, "east": 0.15}, (0.07, 0.3, 0.37, 0.26)),
    "PLZ8_ANTG4": Ordinal({"urban": 0.85, "plz8": 0.45, "east": 0.15}, (0.45, 0.41, 0.14)),
    "PLZ8_HHZ": Ordinal({"urban": 0.6, "plz8": 0.3}, (0.05, 0.12, 0.44, 0.26, 0.13)),
    "PLZ8_GBZ": Ordinal({"urban": -0.5, "plz8": -0.3}, (0.06, 0.18, 0.38, 0.24, 0.14)),
    # community: unemployment is higher in the East and in poorer places
    "ARBEIT": Ordinal({"east": 0.6, "wealth": -0.4, "urban": 0.1}, (0.08, 0.15, 0.33, 0.36, 0.08)),
    "ORTSGR_KLS9": Ordinal({"urban": 0.9, "community": 0.35},
                           (0.06, 0.1, 0.1, 0.13, 0.14, 0.1, 0.12, 0.09, 0.11)),
    "RELAT_AB": Ordinal({"east": 0.5, "wealth": -0.4}, (0.12, 0.13, 0.35, 0.18, 0.22)),
}

# Multinomial choices: code -> (log-odds intercept, drivers). Gumbel noise makes the draw.
Choice = Mapping[int, tuple[float, Mapping[str, float]]]
CHOICES: dict[str, Choice] = {
    "CJT_GESAMTTYP": {1: (0.0, {"age": 0.75, "online": -0.75}), 2: (0.2, {"tradition": 0.9}),
                      3: (0.0, {"online": -0.45}), 4: (0.1, {"online": 1.35, "age": -0.45}),
                      5: (-0.2, {"online": 0.9, "saver": -0.6}), 6: (0.0, {"saver": -0.6, "wealth": -0.45})},
    "GFK_URLAUBERTYP": {1: (-0.6, {"age": -0.9, "online": 0.45}), 2: (-0.7, {"family": 1.05}),
                        3: (-0.5, {"wealth": 0.6, "age": -0.45}), 4: (-0.5, {"tradition": 0.45, "wealth": 0.6}),
                        5: (-0.4, {"urban": -0.75}), 6: (-1.0, {"age": 0.45, "urban": -0.6}),
                        7: (-0.8, {"age": 1.2}), 8: (-0.3, {"wealth": -0.6, "age": 0.45}),
                        9: (-0.5, {"tradition": -0.3}), 10: (0.0, {"wealth": 0.9}),
                        11: (-0.4, {"family": 0.9, "age": -0.45}), 12: (0.0, {"wealth": -1.05})},
    "NATIONALITAET_KZ": {1: (2.3, {}), 2: (0.0, {"urban": 0.9, "wealth": -0.6}), 3: (-0.6, {})},
    "SHOPPER_TYP": {0: (0.0, {"tradition": -0.75, "saver": -0.6}), 1: (0.0, {"male": 0.9}),
                    2: (0.1, {"family": 0.75, "male": -0.6}), 3: (0.1, {"wealth": 0.75})},
    "VERS_TYP": {1: (0.0, {"tradition": 0.75, "saver": 0.6}), 2: (0.0, {})},
    "ZABEOTYP": {1: (0.0, {"avantgarde": 1.05, "wealth": 0.45, "age": -0.45}), 2: (-0.6, {"online": 0.9}),
                 3: (1.1, {"wealth": 0.45}), 4: (0.6, {"wealth": -0.9}), 5: (-0.4, {"age": 0.75}),
                 6: (-0.4, {})},
    "KK_KUNDENTYP": {1: (0.0, {"age": 0.6}), 2: (0.0, {"online": 0.45}), 3: (-0.4, {"age": -0.45}),
                     4: (0.1, {}), 5: (-0.2, {"wealth": -0.45}), 6: (0.2, {"saver": 0.3})},
    # household type used for LP_FAMILIE: 1 alone, 2 couple, 3 single parent, 4 family, 5 multi-person
    "_HOUSEHOLD": {1: (0.9, {"family": -1.95}), 2: (0.2, {"age": 1.2, "family": -0.3}),
                   3: (-1.5, {"family": 0.75, "male": -0.9}), 4: (-0.2, {"family": 2.25, "age": -0.3}),
                   5: (-1.0, {"age": -1.5, "family": -0.3, "urban": 0.45})},
    # LP_STATUS_FEIN: 1-2 low earners, 3-5 average, 6-7 self-employed/titled, 8-9 owners, 10 top
    "LP_STATUS_FEIN": {1: (0.8, {"wealth": -2.4, "age": 0.3}), 2: (0.1, {"wealth": -2.1, "age": -0.9}),
                       3: (0.0, {"wealth": -0.9, "age": -1.2}), 4: (-0.2, {"urban": -1.8, "wealth": -0.3}),
                       5: (-0.3, {"wealth": 0.75, "saver": 0.6}), 6: (-1.0, {"wealth": 0.6}),
                       7: (-2.0, {"wealth": 1.8}),
                       8: (-1.2, {"urban": -1.2, "age": -0.75, "wealth": 0.75, "family": 0.75}),
                       9: (0.0, {"urban": -1.2, "age": 1.05, "wealth": 0.9}), 10: (-0.3, {"wealth": 2.4})},
    "AGER_TYP": {1: (0.2, {"tradition": 0.45, "wealth": -0.75, "online": -0.45}),
                 2: (0.4, {"tradition": 0.9, "wealth": 0.75}), 3: (-0.5, {"tradition": -0.9, "online": 0.45})},
    # GEBAEUDETYP 5 is added separately (vanishingly rare, population only); 7 never occurs
    "GEBAEUDETYP": {1: (2.0, {"urban": -1.35}), 2: (-2.5, {}), 3: (0.7, {"urban": 1.05}),
                    4: (-4.3, {}), 6: (-4.6, {}), 8: (0.5, {"urban": 0.75, "building": 0.45})},
}

FINANZTYP_ORDER = ("FINANZ_MINIMALIST", "FINANZ_SPARER", "FINANZ_HAUSBAUER", "FINANZ_VORSORGER",
                   "FINANZ_ANLEGER", "FINANZ_UNAUFFAELLIGER")  # FINANZTYP codes 1..6

# Roll-ups of the nested codes (from the data dictionary).
STATUS_GROB = {1: 1, 2: 1, 3: 2, 4: 2, 5: 2, 6: 3, 7: 3, 8: 4, 9: 4, 10: 5}
FAMILIE_GROB = {1: 1, 2: 2, 3: 3, 4: 3, 5: 3, 6: 4, 7: 4, 8: 4, 9: 5, 10: 5, 11: 5}
LEBENSPHASE_GROB = {1: 1, 3: 1, 2: 2, 4: 2, 5: 2, 6: 2, 7: 2, 8: 2, 9: 3, 10: 3, 11: 3, 12: 3, 13: 3,
                    14: 4, 15: 4, 16: 4, 17: 5, 18: 5, 19: 5, 20: 5, 21: 6, 22: 6, 23: 6, 24: 7, 25: 7,
                    26: 8, 27: 8, 28: 8, 29: 9, 30: 9, 31: 10, 32: 10, 33: 11, 34: 11, 35: 11,
                    36: 12, 37: 12, 38: 12, 39: 12, 40: 12}
# LP_LEBENSPHASE_FEIN by household type -> income group (low, average, self-employed, owner, top)
# -> age band (young <35, middle <50, older <65, retired). Scalars apply to every age band.
LEBENSPHASE_FEIN = {
    1: ([1, 2, 5, 6], [3, 4, 7, 8], 9, [10, 10, 11, 12], 13),            # alone
    2: ([14, 15, 15, 15], [14, 16, 16, 16], 17, [18, 19, 19, 19], 20),  # couple
    3: (21, 22, 23, 23, 23),                                              # single parent
    4: (24, 25, 26, 27, 28),                                              # family
    5: ([29, 31, 31, 31], [30, 32, 32, 32], [33, 36, 36, 36], [34, 37, 37, 38], [35, 39, 39, 40]),
}
CAMEO_WEALTH = {1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 4, 7: 4, 8: 5, 9: 5}  # DEUG group -> INTL tens
CAMEO_INTL_NEVER = {11: 12, 21: 22, 42: 43, 53: 54}  # absent in the real data: moved to a neighbour

# --------------------------------------------------------------------------------------------
# Missingness.
# --------------------------------------------------------------------------------------------

EMPTY = np.iinfo(np.int16).min  # marker for an empty CSV field

# Blocks emptied together. Sparse rows lose all AREA blocks (ONLINE_AFFINITAET is kept, as in
# the real data) and, in most cases, the HOUSEHOLD block.
AREA_BLOCKS: dict[str, tuple[str, ...]] = {
    "building": ("ANZ_HAUSHALTE_AKTIV", "ANZ_HH_TITEL", "GEBAEUDETYP", "KONSUMNAEHE",
                 "MIN_GEBAEUDEJAHR", "OST_WEST_KZ", "WOHNLAGE", "BALLRAUM", "EWDICHTE",
                 "INNENSTADT", "GEBAEUDETYP_RASTER"),
    "cameo": ("CAMEO_DEUG_2015", "CAMEO_DEU_2015", "CAMEO_INTL_2015"),
    "kba05": ("KBA05_ANTG1", "KBA05_ANTG2", "KBA05_ANTG3", "KBA05_ANTG4", "KBA05_BAUMAX",
              "KBA05_GBZ", "MOBI_REGIO"),
    "regio": ("KKK", "REGIOTYP"),
    "plz8": ("KBA13_ANZAHL_PKW", "PLZ8_ANTG1", "PLZ8_ANTG2", "PLZ8_ANTG3", "PLZ8_ANTG4",
             "PLZ8_BAUMAX", "PLZ8_HHZ", "PLZ8_GBZ"),
    "community": ("ARBEIT", "ORTSGR_KLS9", "RELAT_AB"),
}
# share of NON-sparse rows that still miss one area block (staggered, as in the real files)
BLOCK_EXTRA = {"building": 0.0, "cameo": 0.006, "kba05": 0.045, "regio": 0.025, "plz8": 0.025,
               "community": 0.004}
HOUSEHOLD_BLOCK = ("ALTER_HH", "ANZ_PERSONEN", "ANZ_TITEL", "SOHO_KZ", "TITEL_KZ",
                   "WOHNDAUER_2008", "W_KEIT_KIND_HH", "KK_KUNDENTYP")
SPARSE_HOUSEHOLD = 0.8  # share of sparse rows that also miss the household block
SPARSE_INCOME = 0.2  # ... and HH_EINKOMMEN_SCORE
BLANK_PROFILE = ("CJT_GESAMTTYP", "GFK_URLAUBERTYP", "LP_LEBENSPHASE_FEIN", "LP_LEBENSPHASE_GROB",
                 "LP_FAMILIE_FEIN", "LP_FAMILIE_GROB", "LP_STATUS_FEIN", "LP_STATUS_GROB",
                 "RETOURTYP_BK_S", "ONLINE_AFFINITAET", "HH_EINKOMMEN_SCORE")
SPARSE_BLANK = 0.05  # share of sparse rows that miss even these person fields
PROFILE_UNKNOWN = {"HEALTH_TYP": "-1", "SHOPPER_TYP": "-1", "VERS_TYP": "-1",
                   "PRAEGENDE_JUGENDJAHRE": "0", "NATIONALITAET_KZ": "0"}
PROFILE_UNKNOWN_RATE = {False: 0.09, True: 0.40}  # by sparse flag: ~12% of the population
LP_UNKNOWN = 0.08  # LP_FAMILIE_* and LP_LEBENSPHASE_* = 0
LP_PHASE_UNKNOWN = 0.023  # LP_LEBENSPHASE_FEIN only (GROB in 70% of these): FEIN misses more

# Coded missing values in rows that are not empty: column -> ((code, rate), ...)
MISSING_CODES: dict[str, tuple[tuple[str, float], ...]] = {
    "ALTERSKATEGORIE_GROB": (("9", 0.0032),),
    "GEBURTSJAHR": (("0", 0.44),),
    "ALTER_HH": (("0", 0.29),),
    "W_KEIT_KIND_HH": (("0", 0.045),),
    "ANZ_HAUSHALTE_AKTIV": (("0", 0.007),),
    "KBA05_BAUMAX": (("0", 0.45),),
    "KBA05_GBZ": (("0", 0.002),),
    "KKK": (("0", 0.045),),
    "REGIOTYP": (("0", 0.045),),
    "ARBEIT": (("9", 0.0002),),
    "RELAT_AB": (("9", 0.0002),),
    "ORTSGR_KLS9": (("0", 0.0001),),
    "HH_EINKOMMEN_SCORE": (("0", 0.0005),),
}
# Extra empty fields in rows that are not sparse: column -> rate
EXTRA_EMPTY = {"KK_KUNDENTYP": 0.63, "W_KEIT_KIND_HH": 0.03, "HH_EINKOMMEN_SCORE": 0.002,
               "ANZ_HH_TITEL": 0.004, "KONSUMNAEHE": 0.0005, "KBA13_ANZAHL_PKW": 0.01}
CAMEO_CODED_MISSING = 0.00045  # X / XX together in all three CAMEO columns
CAMEO_UNKNOWN = {"CAMEO_DEUG_2015": "X", "CAMEO_DEU_2015": "XX", "CAMEO_INTL_2015": "XX"}
GEBAEUDETYP_5 = 2e-5  # population only


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoPaths:
    """Where ``generate`` put (or would put) each file."""

    directory: Path
    population: Path
    customers: Path
    feature_summary: Path
    truth: Path
    labels: Path

    @classmethod
    def in_folder(cls, folder: Path | str) -> DemoPaths:
        folder = Path(folder)
        return cls(folder, folder / POPULATION_FILE, folder / CUSTOMERS_FILE, folder / SUMMARY_FILE,
                   folder / TRUTH_FILE, folder / LABELS_FILE)


def generate(out_dir: Path | str, population: int = REAL_POPULATION, customers: int = REAL_CUSTOMERS,
             seed: int = 0) -> DemoPaths:
    """Write the synthetic population, customers, feature summary and planted truth.

    Same seed and sizes give byte-identical files. Files are written into a temporary folder
    beside ``out_dir`` and moved into place at the end, so an interrupted run leaves nothing
    half-written.
    """
    if population < 1 or customers < 1:
        raise ValueError("population and customers must each be at least 1 row")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    schema = load_schema()
    pop_rng, cust_rng = np.random.default_rng(seed).spawn(2)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o755)
        paths = DemoPaths.in_folder(tmp)
        labels = {}
        for table, rng, rows, path in (("population", pop_rng, population, paths.population),
                                       ("customers", cust_rng, customers, paths.customers)):
            columns, segment, sparse = _make_table(rng, rows, table, schema)
            _write_csv(path, schema, columns)
            del columns  # free the codes before the next table
            labels[table] = (segment, sparse)
        paths.feature_summary.write_text(summary_text(), encoding="utf-8")
        _write_labels(paths.labels, labels)
        paths.truth.write_text(_truth_json(seed, labels), encoding="utf-8")
        _move_into_place(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return DemoPaths.in_folder(out_dir)


# --------------------------------------------------------------------------------------------
# One table: segments -> factors -> codes -> missingness
# --------------------------------------------------------------------------------------------


@dataclass
class _Latents:
    """Factors of every row: ``z`` standardised (LATENTS x rows), age in years, flags."""

    z: np.ndarray  # (len(LATENTS), rows): one contiguous row per factor
    age: np.ndarray
    male: np.ndarray
    east: np.ndarray
    avantgarde: np.ndarray

    def __len__(self) -> int:
        return len(self.age)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.z[_AT[name]]

    def combine(self, drivers: Mapping[str, float], mask: np.ndarray | None = None) -> np.ndarray:
        """Sum of weight x factor, written out (not BLAS) so results do not depend on threads."""
        total = np.zeros(len(self) if mask is None else int(mask.sum()), dtype=np.float32)
        for name, weight in drivers.items():
            factor = self[name] if mask is None else self[name][mask]
            total += np.float32(weight) * factor
        return total


def _make_table(rng: np.random.Generator, rows: int, table: str,
                schema: Mapping[str, Feature]) -> tuple[dict[str, _Column], np.ndarray, np.ndarray]:
    """Codes of every column (int16; text columns as label indices), segment ids, sparse flags."""
    shares = np.array([s.population_share if table == "population" else s.customer_share
                       for s in SEGMENTS])
    segment = _allocate(rng, rows, shares)
    weights = np.array([s.sparse_weight for s in SEGMENTS])
    base = SPARSE_SHARE[table] / float(shares @ weights)
    sparse = rng.random(rows) < base * weights[segment]
    lat = _draw_latents(rng, segment, sparse, CUSTOMER_LEAN if table == "customers" else None)
    codes = _codes(rng, lat, schema)
    if table == "customers":  # a real trap: GEBAEUDETYP 5 never occurs among customers
        codes["GEBAEUDETYP"][codes["GEBAEUDETYP"] == 5] = 1
    else:
        _plant_rare_code(rng, codes["GEBAEUDETYP"], 5, GEBAEUDETYP_5, ~sparse)
    _apply_missing(rng, codes, sparse, schema)
    columns = {name: _as_column(codes[name], schema[name]) for name in schema}
    _check_codes(columns, schema)
    return columns, segment.astype(np.int8), sparse


def _allocate(rng: np.random.Generator, rows: int, shares: np.ndarray) -> np.ndarray:
    """Segment of each row: exact largest-remainder counts, shuffled, so shares hit the plan."""
    raw = shares / shares.sum() * rows
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(-(raw - counts), kind="stable")[: rows - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(shares)), counts))


def _design_moments() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, sd and correlation of the factors in the planned population mix.

    Scores are standardised with these constants rather than the sample's own, so a customer
    table (different mix) really shifts its codes.
    """
    p = np.array([s.population_share for s in SEGMENTS])
    means = np.array([[s.age[0], s.wealth, s.urban, s.saver, s.tradition, s.online, s.family,
                       s.male, s.east, s.avantgarde] for s in SEGMENTS])
    within = np.array([[s.age[1] ** 2] + [SPREAD ** 2] * 6
                       + [q * (1 - q) for q in (s.male, s.east, s.avantgarde)] for s in SEGMENTS])
    mean = p @ means
    cov = sum(pk * (np.diag(w) + np.outer(m, m)) for pk, m, w in zip(p, means, within))
    cov = cov - np.outer(mean, mean)
    sd = np.sqrt(np.diag(cov))
    corr = np.eye(len(LATENTS))
    corr[: len(PERSON_FACTORS), : len(PERSON_FACTORS)] = cov / np.outer(sd, sd)
    return mean, sd, corr


_MEAN, _SD, _CORR = _design_moments()


def _draw_latents(rng: np.random.Generator, segment: np.ndarray, sparse: np.ndarray,
                  lean: Mapping[str, object] | None = None) -> _Latents:
    """Each row's factors: its segment's profile plus within-segment spread.

    ``lean`` (customers only) shifts one factor of one segment's rows by ``shift`` (raw units)
    after the draw, so the random streams, and every other row and column, stay as they were.
    """
    n = len(segment)
    z = np.empty((len(LATENTS), n), dtype=np.float32)
    age_mean = np.array([s.age[0] for s in SEGMENTS], dtype=np.float32)[segment]
    age_sd = np.array([s.age[1] for s in SEGMENTS], dtype=np.float32)[segment]
    age = age_mean + age_sd * rng.standard_normal(n, dtype=np.float32)
    age += np.float32(SPARSE_SHIFT["age"]) * sparse
    age = np.clip(age, 18.0, 95.0)
    z[0] = age
    for j, name in enumerate(PERSON_FACTORS[1:7], start=1):
        centre = np.array([getattr(s, name) for s in SEGMENTS], dtype=np.float32)[segment]
        z[j] = centre + SPREAD * rng.standard_normal(n, dtype=np.float32)
        z[j] += np.float32(SPARSE_SHIFT.get(name, 0.0)) * sparse
        if lean is not None and lean["factor"] == name:
            leaning = segment == next(i for i, s in enumerate(SEGMENTS) if s.key == lean["segment"])
            z[j] += np.float32(lean["shift"]) * leaning
    flags = []
    for j, name in enumerate(PERSON_FACTORS[7:], start=7):
        prob = np.array([getattr(s, name) for s in SEGMENTS], dtype=np.float32)[segment]
        flag = rng.random(n, dtype=np.float32) < prob
        z[j] = flag
        flags.append(flag)
    p = len(PERSON_FACTORS)
    z[:p] = (z[:p] - _MEAN.astype(np.float32)[:, None]) / _SD.astype(np.float32)[:, None]
    z[p:] = rng.standard_normal((len(AREA_NOISES), n), dtype=np.float32)
    return _Latents(z, age, *flags)


def _weights(drivers: Mapping[str, float]) -> np.ndarray:
    vector = np.zeros(len(LATENTS))
    for name, weight in drivers.items():
        vector[_AT[name]] = weight
    return vector


def _score(rng: np.random.Generator, lat: _Latents, drivers: Mapping[str, float],
           noise: float) -> np.ndarray:
    """A standard-normal-ish score (in the population): drivers . factors + own noise."""
    b = _weights(drivers)
    scale = float(np.sqrt(b @ _CORR @ b + noise ** 2))
    s = lat.combine(drivers)
    s += np.float32(noise) * rng.standard_normal(len(lat), dtype=np.float32)
    return s / np.float32(scale)


def _cut(score: np.ndarray, probs: tuple[float, ...]) -> np.ndarray:
    """Position 0..K-1 of each score among cut points that give ``probs`` for N(0,1)."""
    p = np.asarray(probs, dtype=float) / sum(probs)
    cuts = [NormalDist().inv_cdf(q) for q in np.cumsum(p)[:-1]]
    return np.searchsorted(np.asarray(cuts, dtype=np.float32), score).astype(np.int16)


def _ordinal(rng: np.random.Generator, lat: _Latents, rule: Ordinal,
             codes: list[int]) -> np.ndarray:
    """Codes of an Ordinal rule; strong drivers give low codes when ``low_is_strong``."""
    if len(rule.probs) != len(codes):
        raise ValueError(f"{len(rule.probs)} frequencies for {len(codes)} codes")
    score = _score(rng, lat, rule.drivers, rule.noise)
    if rule.low_is_strong:
        score = -score
    return np.asarray(codes, dtype=np.int16)[_cut(score, rule.probs)]


def _choose(rng: np.random.Generator, lat: _Latents, choice: Choice,
            mask: np.ndarray | None = None) -> np.ndarray:
    """Multinomial-logit draw (utilities + Gumbel noise) for all rows or the ``mask`` rows."""
    keys = list(choice)
    utility = np.stack([lat.combine(choice[k][1], mask) + np.float32(choice[k][0]) for k in keys], axis=1)
    uniform = rng.random(utility.shape, dtype=np.float32)
    utility -= np.log(-np.log(np.clip(uniform, 1e-7, 1 - 1e-7)))
    return np.asarray(keys, dtype=np.int16)[np.argmax(utility, axis=1)]


def _codes(rng: np.random.Generator, lat: _Latents, schema: Mapping[str, Feature]) -> dict[str, np.ndarray]:
    """Valid codes (before missingness) of all 85 columns, as int16 (text: label indices)."""
    out: dict[str, np.ndarray] = {}
    for name, rule in ORDINALS.items():
        if name not in FINANZTYP_ORDER:  # drawn with FINANZTYP in _finance_codes
            out[name] = _ordinal(rng, lat, rule, sorted(int(c) for c in schema[name].codes))
    for name in ("CJT_GESAMTTYP", "GFK_URLAUBERTYP", "NATIONALITAET_KZ", "SHOPPER_TYP",
                 "VERS_TYP", "ZABEOTYP", "KK_KUNDENTYP", "GEBAEUDETYP"):
        out[name] = _choose(rng, lat, CHOICES[name])
    out["ANREDE_KZ"] = np.where(lat.male, 1, 2).astype(np.int16)
    out["GREEN_AVANTGARDE"] = lat.avantgarde.astype(np.int16)
    out["OST_WEST_KZ"] = np.where(lat.east, 0, 1).astype(np.int16)  # label index: 'O', 'W'
    out.update(_age_codes(rng, lat))
    out.update(_finance_codes(rng, lat))
    out.update(_life_stage_codes(rng, lat))
    out.update(_title_codes(rng, lat))
    out.update(_building_codes(rng, lat))
    out.update(_cameo_codes(rng, lat, schema))
    return out


def _age_codes(rng: np.random.Generator, lat: _Latents) -> dict[str, np.ndarray]:
    """Age-driven columns, all from the same age so they agree (up to estimation noise)."""
    n = len(lat)
    birth = (REFERENCE_YEAR - np.floor(lat.age)).astype(np.int16)
    estimate = lat.age + 4.0 * rng.standard_normal(n, dtype=np.float32)
    age_group = (1 + np.searchsorted(np.array([30, 46, 61], dtype=np.float32), estimate,
                                     side="right")).astype(np.int16)
    # PRAEGENDE_JUGENDJAHRE: decade of youth (40s..90s), movement = GREEN_AVANTGARDE,
    # East/West only where the code distinguishes it (60s avantgarde, 80s)
    decade = np.clip((birth + 17 - 1940) // 10, 0, 5)
    main = np.array([1, 3, 5, 8, 10, 14], dtype=np.int16)[decade]
    avant = np.array([2, 4, 6, 9, 11, 15], dtype=np.int16)[decade]
    main = np.where(lat.east & (decade == 4), 12, main)
    avant = np.where(lat.east & (decade == 2), 7, np.where(lat.east & (decade == 4), 13, avant))
    youth = np.where(lat.avantgarde, avant, main).astype(np.int16)
    # household head born in roughly the same years; ALTER_HH codes are 5-year bands from 1895
    head = birth + np.round(3.0 * rng.standard_normal(n, dtype=np.float32)).astype(np.int16)
    alter_hh = np.clip((head - 1895) // 5 + 1, 1, 21).astype(np.int16)
    # AGER_TYP only describes older people; everyone else is coded unknown
    ager = np.full(n, -1, dtype=np.int16)
    ager[rng.random(n) < 0.02] = 0
    older = (lat.age >= 58) & (rng.random(n) < 0.95)
    ager[older] = _choose(rng, lat, CHOICES["AGER_TYP"], older)
    return {"GEBURTSJAHR": birth, "ALTERSKATEGORIE_GROB": age_group,
            "PRAEGENDE_JUGENDJAHRE": youth, "ALTER_HH": alter_hh, "AGER_TYP": ager}


def _finance_codes(rng: np.random.Generator, lat: _Latents) -> dict[str, np.ndarray]:
    """FINANZ_* (1 = strong affinity) and FINANZTYP = the strongest of those affinities."""
    out, strengths = {}, []
    for name in FINANZTYP_ORDER:
        rule = ORDINALS[name]
        strength = _score(rng, lat, rule.drivers, rule.noise)  # high = strong affinity
        out[name] = (1 + _cut(-strength, rule.probs)).astype(np.int16)
        strengths.append(strength)
    pick = np.stack(strengths, axis=1)
    pick += 0.5 * rng.standard_normal(pick.shape, dtype=np.float32)
    out["FINANZTYP"] = (1 + np.argmax(pick, axis=1)).astype(np.int16)
    return out


def _life_stage_codes(rng: np.random.Generator, lat: _Latents) -> dict[str, np.ndarray]:
    """LP_FAMILIE, LP_STATUS, LP_LEBENSPHASE (FEIN and GROB, nested) and ANZ_PERSONEN."""
    n = len(lat)
    household = _choose(rng, lat, CHOICES["_HOUSEHOLD"])
    band = np.searchsorted(np.array([35, 50, 65], dtype=np.float32), lat.age, side="right")
    family_fein = np.select(
        [household == 1, household == 2, household == 3, household == 4],
        [1, 2, np.array([3, 4, 5, 5])[band], np.array([6, 7, 8, 8])[band]],
        default=np.where(lat.age < 30, 9, np.where(rng.random(n) < 0.8, 10, 11)))
    status_fein = _choose(rng, lat, CHOICES["LP_STATUS_FEIN"])
    status_grob = _lookup(STATUS_GROB, status_fein)
    phase_fein = _phase_table()[household - 1, status_grob - 1, band]
    children = rng.poisson(0.8, n)
    persons = np.select([household == 1, household == 2, household == 3, household == 4],
                        [1, 2, 2 + (children > 1), 3 + children], default=3 + children)
    persons[rng.random(n) < 0.07] = 0  # the real column holds zeros
    big = rng.random(n) < 2e-5
    persons[big] = rng.integers(10, 46, big.sum())
    return {"LP_FAMILIE_FEIN": family_fein.astype(np.int16),
            "LP_FAMILIE_GROB": _lookup(FAMILIE_GROB, family_fein),
            "LP_STATUS_FEIN": status_fein, "LP_STATUS_GROB": status_grob,
            "LP_LEBENSPHASE_FEIN": phase_fein, "LP_LEBENSPHASE_GROB": _lookup(LEBENSPHASE_GROB, phase_fein),
            "ANZ_PERSONEN": persons.astype(np.int16)}


def _phase_table() -> np.ndarray:
    """LEBENSPHASE_FEIN as an array [household-1, income group-1, age band]."""
    table = np.zeros((5, 5, 4), dtype=np.int16)
    for household, groups in LEBENSPHASE_FEIN.items():
        for g, codes in enumerate(groups):
            table[household - 1, g] = codes
    return table


def _lookup(mapping: Mapping[int, int], values: np.ndarray) -> np.ndarray:
    table = np.zeros(max(mapping) + 1, dtype=np.int16)
    for key, value in mapping.items():
        table[key] = value
    return table[values]


def _title_codes(rng: np.random.Generator, lat: _Latents) -> dict[str, np.ndarray]:
    """Academic titles (rare, more often wealthy), and small-office/home-office flags."""
    n = len(lat)
    wealth = lat["wealth"]
    titled = rng.random(n) < 0.0018 * np.exp(0.8 * wealth)
    kind = np.array([1, 2, 3, 4, 5], dtype=np.int16)[
        np.searchsorted(np.cumsum([0.7, 0.02, 0.04, 0.14]), rng.random(n))]
    title = np.where(titled, kind, 0).astype(np.int16)
    anz_titel = (titled | (rng.random(n) < 0.002)).astype(np.int16)
    anz_titel[rng.random(n) < 3e-5] = 2
    soho = (rng.random(n) < 0.006 * np.exp(0.5 * wealth)).astype(np.int16)
    return {"TITEL_KZ": title, "ANZ_TITEL": anz_titel, "SOHO_KZ": soho}


def _building_codes(rng: np.random.Generator, lat: _Latents) -> dict[str, np.ndarray]:
    """Building and cell features that are counts or flags rather than plain scales."""
    n = len(lat)
    density = lat.combine({"urban": 0.85, "building": 0.5})
    normal = rng.standard_normal((3, n), dtype=np.float32)
    households = np.exp(1.3 + 1.0 * density + 0.5 * normal[0])
    tower = rng.random(n) < 0.001  # the odd large block: the real column reaches 595
    households[tower] = np.exp(3.6 + 0.7 * normal[1][tower])
    households = np.clip(np.round(households), 1, 595).astype(np.int16)
    titled = rng.poisson(households * 0.003 * np.exp(0.7 * lat["wealth"]))
    hh_titel = np.clip(titled, 0, 23).astype(np.int16)
    year = np.full(n, 1992, dtype=np.int16)  # the database's first year for most buildings
    later = rng.random(n) < 0.2 + 0.1 * (lat["family"] > 0)
    year[later] = rng.integers(1993, 2017, later.sum())
    earlier = ~later & (rng.random(n) < 0.05)
    year[earlier] = rng.integers(1985, 1992, earlier.sum())
    rural = rng.random(n) < 1 / (1 + np.exp(1.6 * density + 1.2))
    quality = _ordinal(rng, lat, Ordinal({"wealth": 0.7, "area_wealth": 0.5},
                                         (0.07, 0.16, 0.42, 0.23, 0.12), low_is_strong=True),
                       [1, 2, 3, 4, 5])
    wohnlage = np.where(rural, np.where(year >= 2000, 8, 7), quality).astype(np.int16)
    wohnlage[rng.random(n) < 0.008] = 0
    cars = np.exp(6.35 + lat.combine({"urban": -0.135, "plz8": -0.07, "wealth": 0.15}) + 0.45 * normal[2])
    return {"ANZ_HAUSHALTE_AKTIV": households, "ANZ_HH_TITEL": hh_titel,
            "MIN_GEBAEUDEJAHR": year, "WOHNLAGE": wohnlage,
            "KBA05_BAUMAX": _dominant_homes(_score(rng, lat, {"urban": 0.85, "micro": 0.5}, 0.6),
                                            (0.62, 0.04, 0.15, 0.19), 0.2, rng),
            "PLZ8_BAUMAX": _dominant_homes(_score(rng, lat, {"urban": 0.9, "plz8": 0.45}, 0.4),
                                           (0.73, 0.1, 0.08, 0.09), 0.125, rng),
            "KBA13_ANZAHL_PKW": np.clip(np.round(cars), 0, 2300).astype(np.int16)}


def _dominant_homes(density: np.ndarray, probs: tuple[float, ...], business: float,
                    rng: np.random.Generator) -> np.ndarray:
    """*_BAUMAX: dominant home size 1-4 from density, or 5 (business), commoner where dense."""
    size = (1 + _cut(density, probs)).astype(np.int16)
    logit = np.log(business / (1 - business)) + 1.0 * density
    size[rng.random(len(size)) < 1 / (1 + np.exp(-logit))] = 5
    return size


def _cameo_codes(rng: np.random.Generator, lat: _Latents,
                 schema: Mapping[str, Feature]) -> dict[str, np.ndarray]:
    """CAMEO group (1 = upper class), type within the group, and the international code.

    Returned as indices into each column's labels (see ``_labels``), so the three stay nested.
    """
    group = 1 + _cut(-_score(rng, lat, {"wealth": 0.75, "area_wealth": 0.55}, 0.45),
                     (0.045, 0.105, 0.11, 0.13, 0.07, 0.135, 0.1, 0.17, 0.135))
    stage_score = _score(rng, lat, {"age": 0.8, "family": 0.2}, 0.6)
    stage = 1 + _cut(stage_score, (0.31, 0.1, 0.15, 0.26, 0.18))
    intl = _lookup(CAMEO_WEALTH, group) * 10 + stage
    for never, neighbour in CAMEO_INTL_NEVER.items():
        intl[intl == never] = neighbour
    # type letter follows the life stage within the group: A = youngest areas
    deu_labels = _labels(schema["CAMEO_DEU_2015"])
    letters = np.array([sum(1 for c in deu_labels if c[0] == str(g)) for g in range(10)])
    first = np.array([next((i for i, c in enumerate(deu_labels) if c[0] == str(g)), 0) for g in range(10)])
    position = ndtr(stage_score)
    letter = np.minimum((position * letters[group]).astype(np.int16), letters[group] - 1)
    intl_labels = _labels(schema["CAMEO_INTL_2015"])
    intl_index = np.zeros(100, dtype=np.int16)
    for i, label in enumerate(intl_labels):
        if label.isdigit():
            intl_index[int(label)] = i
    return {"CAMEO_DEUG_2015": (group - 1).astype(np.int16),
            "CAMEO_DEU_2015": (first[group] + letter).astype(np.int16),
            "CAMEO_INTL_2015": intl_index[intl]}


def _plant_rare_code(rng: np.random.Generator, values: np.ndarray, code: int, rate: float,
                     allowed: np.ndarray) -> None:
    """Set ``code`` in a ``rate`` share of the allowed rows, and in at least one of them."""
    hit = allowed & (rng.random(len(values)) < rate)
    if not hit.any() and allowed.any():
        candidates = np.flatnonzero(allowed)
        hit[candidates[rng.integers(len(candidates))]] = True
    values[hit] = code


def _apply_missing(rng: np.random.Generator, codes: dict[str, np.ndarray], sparse: np.ndarray,
                   schema: Mapping[str, Feature]) -> None:
    """Overwrite codes with missing codes, then with EMPTY, following the rules above."""
    n = len(sparse)
    kept = ~sparse
    # coded missing values first; the empties below win where both apply
    unknown = rng.random(n) < np.where(sparse, PROFILE_UNKNOWN_RATE[True], PROFILE_UNKNOWN_RATE[False])
    for name, code in PROFILE_UNKNOWN.items():
        share = 1.0 if name in ("HEALTH_TYP", "SHOPPER_TYP", "VERS_TYP") else 0.97
        codes[name][unknown & (rng.random(n) < share)] = _code_value(code, schema[name])
    lp = rng.random(n) < LP_UNKNOWN
    phase = ~lp & (rng.random(n) < LP_PHASE_UNKNOWN)
    for name in ("LP_FAMILIE_FEIN", "LP_FAMILIE_GROB", "LP_LEBENSPHASE_FEIN", "LP_LEBENSPHASE_GROB"):
        codes[name][lp] = 0
    codes["LP_LEBENSPHASE_FEIN"][phase] = 0
    codes["LP_LEBENSPHASE_GROB"][phase & (rng.random(n) < 0.7)] = 0
    for name, rules in MISSING_CODES.items():
        for code, rate in rules:
            codes[name][rng.random(n) < rate] = _code_value(code, schema[name])
    cameo_missing = rng.random(n) < CAMEO_CODED_MISSING
    for name, code in CAMEO_UNKNOWN.items():
        codes[name][cameo_missing] = _code_value(code, schema[name])
    # empty fields: sparse rows lose the area blocks, most of the household block, and a few
    # of them nearly everything; other rows now and then lose one area block
    for block, names in AREA_BLOCKS.items():
        empty = sparse | (kept & (rng.random(n) < BLOCK_EXTRA[block]))
        for name in names:
            codes[name][empty] = EMPTY
    household = sparse & (rng.random(n) < SPARSE_HOUSEHOLD)
    for name in HOUSEHOLD_BLOCK:
        codes[name][household] = EMPTY
    codes["HH_EINKOMMEN_SCORE"][sparse & (rng.random(n) < SPARSE_INCOME)] = EMPTY
    blank = sparse & (rng.random(n) < SPARSE_BLANK)
    for name in BLANK_PROFILE:
        codes[name][blank] = EMPTY
    for name, rate in EXTRA_EMPTY.items():
        codes[name][kept & (rng.random(n) < rate)] = EMPTY


def _code_value(code: str, feature: Feature) -> int:
    """The int16 value that stands for a missing code in this column's array."""
    if feature.is_text:
        return _labels(feature).index(code)
    return int(code)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _labels(feature: Feature) -> list[str]:
    """Text columns: valid codes then missing codes; arrays hold indices into this list."""
    return list(feature.codes) + [c for c in feature.missing if c not in feature.codes]


@dataclass
class _Column:
    values: np.ndarray  # int16 codes, or label indices for text columns; EMPTY = empty field
    labels: list[str] | None  # text columns only


def _as_column(values: np.ndarray, feature: Feature) -> _Column:
    return _Column(values.astype(np.int16, copy=False), _labels(feature) if feature.is_text else None)


def _check_codes(columns: Mapping[str, _Column], schema: Mapping[str, Feature]) -> None:
    """Fail loudly if any value is neither a valid code nor one of the summary's missing codes."""
    for name, column in columns.items():
        feature = schema[name]
        values = column.values[column.values != EMPTY]
        if column.labels is not None:
            bad = values[(values < 0) | (values >= len(column.labels))]
        elif feature.min is not None:
            missing = np.array([int(c) for c in feature.missing], dtype=np.int16)
            ok = ((values >= feature.min) & (values <= feature.max)) | np.isin(values, missing)
            bad = values[~ok]
        else:
            allowed = np.array([int(c) for c in (*feature.codes, *feature.missing)], dtype=np.int16)
            bad = values[~np.isin(values, allowed)]
        if bad.size:
            raise RuntimeError(f"synthetic {name} produced invalid codes {sorted(set(bad.tolist()))[:5]}")


def _tokens(column: _Column) -> tuple[pa.Array, int]:
    """The text of each value a column takes, and the value the first token stands for.

    A column with any empty field is written as floats (``2.0``), as pandas wrote the real files.
    """
    values = column.values
    present = values[values != EMPTY]
    if column.labels is not None:
        return pa.array(column.labels, pa.string()), 0
    lo = int(present.min()) if present.size else 0
    hi = int(present.max()) if present.size else 0
    suffix = ".0" if present.size < values.size else ""
    return pa.array([f"{v}{suffix}" for v in range(lo, hi + 1)], pa.string()), lo


def _write_csv(path: Path, schema: Mapping[str, Feature], columns: Mapping[str, _Column],
               chunk: int = 50_000) -> None:
    """Write ``;``-separated text with pyarrow's CSV writer, one block of rows at a time.

    Each column is a dictionary array (codes indexing the column's tokens, empty fields null),
    so no per-row Python and no string per cell is built. Measured at 200,000 rows: 1.0 s and
    181 MB peak, as fast as the byte-table writer it replaced (0.96 s, 178 MB), with
    byte-identical output.
    """
    names = list(schema)
    tokens = {name: _tokens(columns[name]) for name in names}
    arrow_schema = pa.schema([(name, pa.dictionary(pa.int32(), pa.string())) for name in names])
    options = pacsv.WriteOptions(delimiter=";", quoting_style="none", quoting_header="none")
    n = len(columns[names[0]].values)
    with pacsv.CSVWriter(str(path), arrow_schema, write_options=options) as writer:
        for start in range(0, n, chunk):
            arrays = []
            for name in names:
                values = columns[name].values[start:start + chunk]
                words, offset = tokens[name]
                codes = pa.array(values.astype(np.int32) - offset, mask=values == EMPTY)
                arrays.append(pa.DictionaryArray.from_arrays(codes, words))
            writer.write_batch(pa.record_batch(arrays, schema=arrow_schema))


def _write_labels(path: Path, labels: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """planted_labels.parquet: table, 0-based row in that CSV, planted segment, sparse flag."""
    tables, rows, segments, sparse = [], [], [], []
    for table, (segment, flags) in labels.items():
        tables.append(pa.repeat(pa.scalar(table), len(segment)))
        rows.append(np.arange(len(segment), dtype=np.int32))
        segments.append(segment)
        sparse.append(flags)
    data = pa.table({"table": pa.concat_arrays(tables), "row": np.concatenate(rows),
                     "segment": np.concatenate(segments), "sparse": np.concatenate(sparse)})
    pq.write_table(data, path, compression="zstd")


def _truth_json(seed: int, labels: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """planted_truth.json: the plan per segment plus what was actually drawn."""
    pop_segment, pop_sparse = labels["population"]
    cust_segment, cust_sparse = labels["customers"]
    pop_counts = np.bincount(pop_segment, minlength=len(SEGMENTS))
    cust_counts = np.bincount(cust_segment, minlength=len(SEGMENTS))
    segments = []
    for i, s in enumerate(SEGMENTS):
        segments.append({
            "id": i, "key": s.key, "name": s.name, "description": s.description,
            "population_share": s.population_share, "customer_share": s.customer_share,
            "expected_index": round(s.index, 1), "representation": s.representation, "niche": s.niche,
            "population_rows": int(pop_counts[i]), "customer_rows": int(cust_counts[i]),
            "profile": {"age_years": s.age[0], "wealth": s.wealth, "urban": s.urban,
                        "saver": s.saver, "tradition": s.tradition, "online": s.online,
                        "family": s.family, "share_male": s.male, "share_east": s.east,
                        "share_avantgarde": s.avantgarde},
        })
    truth = {
        "generator": "analysis.demo.synthetic", "generator_version": GENERATOR_VERSION, "seed": seed,
        "population_rows": int(len(pop_segment)), "customer_rows": int(len(cust_segment)),
        "segments": segments,
        "sparse_share": {"population": round(float(pop_sparse.mean()), 6),
                         "customers": round(float(cust_sparse.mean()), 6)},
        "sparse_rows": {"population": int(pop_sparse.sum()), "customers": int(cust_sparse.sum())},
        "customer_lean": dict(CUSTOMER_LEAN),
        "notes": ("Profile values are segment means of the latent factors in standard units "
                  "(age in years). Sparse rows miss every area block and mostly the household "
                  "block; they lean towards the young urban segments. Index = 100 x customer "
                  "share / population share."),
    }
    return json.dumps(truth, indent=2) + "\n"


def _move_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename the finished folder into place, or (if out_dir exists) each file, truth last.

    Not ``shell.store.atomic_folder``: that swaps the whole folder and so would delete other
    files a user keeps in ``--out`` (``segments demo-data --out DIR`` only adds its five).
    """
    try:
        os.rename(tmp, out_dir)  # atomic when out_dir does not exist (or is an empty folder)
        return
    except OSError:
        pass
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (POPULATION_FILE, CUSTOMERS_FILE, SUMMARY_FILE, LABELS_FILE, TRUTH_FILE):
        os.replace(tmp / name, out_dir / name)
