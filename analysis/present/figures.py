"""The report's charts: one function per figure, each taking a ``Results`` and returning a Figure.

Every chart that shows segments colours them with :func:`segment_colour`, keyed by segment id,
so a segment has the same colour on every page and in the PDF; the set-aside group (id -1) is
always grey. Figures are at most ``WIDTH`` inches wide, which fits the HTML column and the text
width of the Typst PDF (A4, 2 cm margins) without scaling the lettering down.

Nothing here computes results: numbers come from the results folder (``analysis.results``).
"""
from __future__ import annotations

import hashlib
import io
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from adjustText import adjust_text
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from analysis.constants import STABLE_ARI
from analysis.constants import SET_ASIDE
from analysis.present.segments import effect_rows, label, level
from analysis.present.words import column_words, mailing_gains, profile_order, shares, short_label
from analysis.results import Results

WIDTH = 6.5  # inches
DPI = 200
# Where pages write the charts they show with alternative text (relative to the page, gitignored).
CHARTS = "charts_files"
SET_ASIDE_COLOUR = "#8c8c8c"
# Seaborn's colour-blind palette, then its dark one, without their greys: grey means set aside.
SEGMENT_COLOURS = tuple(c for c in (*sns.color_palette("colorblind").as_hex(), *sns.color_palette("dark").as_hex())
                        if c not in ("#949494", "#3c3c3c"))
POPULATION_COLOUR = "#4d5d70"
CUSTOMER_COLOUR = "#c46a00"
NEUTRAL = "#4d5d70"
STYLE = {
    "font.size": 8.5, "axes.titlesize": 9.5, "axes.titleweight": "bold", "axes.labelsize": 8.5,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8, "legend.frameon": False,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.color": "#e6e6e6",
    "grid.linewidth": 0.6, "axes.axisbelow": True, "axes.edgecolor": "#888888",
    "savefig.bbox": "tight", "figure.facecolor": "white",
}


def segment_colour(segment_id: int) -> str:
    """The colour of a segment on every chart: grey for the set-aside group."""
    if segment_id == SET_ASIDE:
        return SET_ASIDE_COLOUR
    return SEGMENT_COLOURS[int(segment_id) % len(SEGMENT_COLOURS)]


def palette(results: Results) -> dict[int, str]:
    """Segment id -> colour for every segment of a run, the set-aside group included."""
    return {s["id"]: segment_colour(s["id"]) for s in results.segments}


@contextmanager
def _style() -> Iterator[None]:
    with plt.rc_context(STYLE):
        yield


def _wrap(text: str, width: int = 34) -> str:
    return "\n".join(textwrap.wrap(str(text), width, break_on_hyphens=False)) or str(text)


def _finite(values: np.ndarray, cap: float) -> np.ndarray:
    """Replace infinite interval ends (zero counts) by the axis limit so they can be drawn."""
    return np.where(np.isfinite(values), values, cap)


def _subplots(*grid: int, figsize: tuple[float, float], **options):
    """A figure outside pyplot's state: it is shown only when a page displays it (once) and
    is freed like any object, so pages and tests can make many without closing them."""
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(*grid, **options)


def png(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes; the PNG records its dpi, so the PDF places it at its true size."""
    buffer = io.BytesIO()
    with _style():
        fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def show(fig: Figure, alt: str | None = None) -> None:
    """Display a figure on a report page (or in a notebook) as a PNG image.

    The image is made here rather than by the notebook's matplotlib backend, so pages look the
    same whatever backend or IPython version runs them; Quarto attaches the cell's ``fig-cap``
    and ``label`` to it as to any figure. With ``alt`` (the chart's message, from
    :mod:`analysis.present.alt_text`) the PNG is written to ``charts_files/`` beside the page and
    shown as a markdown image with that ``fig-alt``: Quarto gives an image displayed by a cell
    its caption as alternative text, and a cell option cannot be computed from the results.
    """
    from IPython.display import Image, Markdown, display
    data = png(fig)
    if alt is None:
        display(Image(data=data, format="png"))
        return
    path = Path(CHARTS) / (hashlib.blake2b(data, digest_size=10).hexdigest() + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    display(Markdown(f'![]({path.as_posix()}){{fig-alt="{attribute(alt)}"}}'))


def attribute(text: str) -> str:
    """Text as a Pandoc attribute value in double quotes (one line, quotes and backslashes escaped)."""
    return " ".join(str(text).split()).replace("\\", "\\\\").replace('"', '\\"')


def save(fig: Figure, path: Path | str) -> Path:
    """Write a figure as PNG (the format both the HTML site and the Typst PDF take) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png(fig))
    return path


def missingness(results: Results, top: int = 25) -> Figure:
    """Share of people with a missing or unknown value, per feature, population vs customers.

    Shows the ``top`` features most often missing in the population; a dashed line marks the
    limit above which a feature is dropped.
    """
    from analysis.inputs.schema import load_schema
    schema = load_schema()
    pop = results.table("quality_population").set_index("feature")["missing_share"]
    cust = results.table("quality_customers").set_index("feature")["missing_share"].reindex(pop.index)
    order = pop[pop > 0].sort_values(ascending=False).head(top).index[::-1]
    dropped = results.summary["cleaning"]["dropped"]
    # Dropped features are red *and* say so: colour alone must not carry the message.
    labels = [f"{_wrap(schema[f].description if f in schema else f, 38)} ({f}{', dropped' if f in dropped else ''})"
              for f in order]
    with _style():
        fig, ax = _subplots(figsize=(WIDTH, 0.26 * len(order) + 1.1))
        y = np.arange(len(order))
        ax.barh(y + 0.2, pop[order], height=0.4, color=POPULATION_COLOUR, label="Population (hatched)",
                hatch="//", edgecolor="white", linewidth=0)
        ax.barh(y - 0.2, cust[order], height=0.4, color=CUSTOMER_COLOUR, label="Customers")
        ax.set_yticks(y, labels, fontsize=6.5)
        for tick, feature in zip(ax.get_yticklabels(), order):
            if feature in dropped:
                tick.set_color("#b00020")
        limit = results.summary["settings"]["column_missing_threshold"]
        ax.axvline(limit, color="#b00020", linestyle="--", linewidth=1,
                   label=f"Drop limit ({limit:.0%}); dropped features in red")
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlim(0, 1)
        ax.set_xlabel("People with the value missing or unknown")
        ax.set_ylim(-0.7, len(order) - 0.3)
        ax.grid(axis="y", visible=False)
        fig.legend(loc="outside lower center", ncols=2)  # below the chart: never over a bar
    return fig


def set_aside_profile(results: Results, top: int = 8) -> Figure:
    """How the set-aside people differ from everyone else, in effect sizes with plain labels."""
    profile = results.table("set_aside_profile").head(top)
    effects = np.abs(profile["effect"].to_numpy()) if len(profile) else np.array([])
    return _effect_bars(effects, list(profile["phrase"]) if len(profile) else [], SET_ASIDE_COLOUR,
                        "Set-aside people compared with everyone else (population)",
                        empty="Too few set-aside people have known values to compare them")


def scree(results: Results, first: int = 20) -> Figure:
    """Variance explained: the first components one by one, and the running total with the target."""
    table = results.table("scree")
    pca = results.summary["pca"]
    n_keep, target = pca["n_components"], pca["variance_target"]
    with _style():
        fig, (left, right) = _subplots(1, 2, figsize=(WIDTH, 2.7))
        head = table.head(first)
        kept = head["kept"].to_numpy(dtype=bool)
        left.bar(head["component"][kept], head["variance_ratio"][kept], color=NEUTRAL, label="Kept")
        left.bar(head["component"][~kept], head["variance_ratio"][~kept], color="#c5cbd3", hatch="..",
                 edgecolor="#8a939e", linewidth=0, label="Not kept (dotted)")
        left.legend(loc="upper right")
        left.set_title(f"Each of the first {len(head)} components")
        left.set_xlabel("Component")
        left.set_ylabel("Share of variation")
        left.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        right.plot(table["component"], table["cumulative"], color=NEUTRAL)
        right.axhline(target, color="#b00020", linestyle="--", linewidth=1, label=f"Target {target:.0%}")
        right.axvline(n_keep, color=NEUTRAL, linestyle=":", linewidth=1, label=f"{n_keep} components kept")
        right.set_title("Running total")
        right.set_xlabel("Number of components")
        right.set_ylim(0, 1.02)
        right.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        right.legend(loc="lower right")
    return fig


def component_weights(results: Results, n: int = 3) -> Figure:
    """What a high score on each of the first ``n`` components means: its strongest features,
    each labelled with the words for the end a high score points to (a low score means the
    opposite), bar length = weight."""
    components = results.summary["pca"]["components"][:n]
    words = column_words(results)
    with _style():
        fig, axes = _subplots(len(components), 1, figsize=(WIDTH, 1.75 * len(components)),
                              squeeze=False, sharex=True)
        for number, (ax, comp) in enumerate(zip(axes[:, 0], components), start=1):
            weights = comp["top_weights"][::-1]
            labels = [words.get((w["column"], 1 if w["weight"] > 0 else -1), w["description"]) for w in weights]
            ax.barh([_wrap(label, 44) for label in labels], [abs(w["weight"]) for w in weights],
                    color=NEUTRAL, height=0.6)
            ax.set_title(f"Component {number} ({comp['variance_ratio']:.1%} of the variation): "
                         "a high score means", loc="left", fontsize=8.5)
            ax.grid(axis="y", visible=False)
        axes[-1, 0].set_xlabel("Weight of the feature in the component (size, without sign)")
    return fig


def k_curves(results: Results) -> Figure:
    """The three signals behind the number of segments: inertia (elbow), silhouette, stability."""
    curves = results.table("k_curves")
    selection = results.summary["k_selection"]
    chosen, elbow = selection["k"], selection["elbow_k"]
    with _style():
        fig, axes = _subplots(1, 3, figsize=(WIDTH, 2.5), sharex=True)
        inertia, silhouette, stability = axes
        inertia.plot(curves["k"], curves["inertia"] / curves["inertia"].iloc[0], marker="o",
                     markersize=3, color=NEUTRAL)
        at_elbow = curves.loc[curves["k"] == elbow, "inertia"] / curves["inertia"].iloc[0]
        inertia.plot([elbow], at_elbow, marker="o", markersize=8, fillstyle="none", color="#b00020",
                     linestyle="none", label=f"Elbow (k = {elbow})")
        inertia.set_title("Inertia (lower = tighter)")
        inertia.set_ylabel("Relative to k = %d" % curves["k"].iloc[0])
        inertia.legend(loc="upper right")
        silhouette.plot(curves["k"], curves["silhouette"], marker="o", markersize=3, color=NEUTRAL)
        silhouette.set_title("Silhouette (higher = clearer)")
        # Often one or two k's only (where stability can change the pick): markers, not just lines.
        stability.plot(curves["k"], curves["stability_mean"], marker="o", markersize=5, color=NEUTRAL,
                       label="Mean")
        stability.plot(curves["k"], curves["stability_min"], marker="v", markersize=4, linestyle=":",
                       color=NEUTRAL, label="Worst")
        stability.axhline(STABLE_ARI, color="#b00020", linestyle="--", linewidth=1,
                          label=f"Reproducible ({STABLE_ARI:.2f})")
        stability.set_title("Stability of refits")
        stability.set_ylim(min(0.0, curves["stability_min"].min()), 1.02)
        stability.legend(loc="lower left")
        for ax in axes:
            ax.axvline(chosen, color="#029e73", linewidth=6, alpha=0.18)
            ax.set_xlabel("Number of segments k")
        fig.suptitle(f"Chosen: k = {chosen} (green band)", fontsize=8.5, x=0.99, ha="right")
    return fig


def segment_shares(results: Results) -> Figure:
    """Share of the population and of customers in each segment, with 95% intervals."""
    table = shares(results)
    segments = profile_order(results)[::-1]
    with _style():
        fig, ax = _subplots(figsize=(WIDTH, 0.5 * len(segments) + 1.0))
        y = np.arange(len(segments))
        for row, segment in zip(y, segments):
            data, colour = table.loc[segment["id"]], segment_colour(segment["id"])
            for offset, who, alpha, hatch in ((0.2, "population", 0.35, "//"), (-0.2, "customer", 1.0, None)):
                share = data[f"{who}_share"]
                error = [[share - data[f"{who}_low"]], [data[f"{who}_high"] - share]]
                ax.barh(row + offset, share, height=0.38, color=colour, alpha=alpha, hatch=hatch,
                        edgecolor=colour, xerr=error, error_kw={"elinewidth": 0.8, "capsize": 2})
        ax.set_yticks(y, [_wrap(short_label(s), 40) for s in segments], fontsize=7.5)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel("Share of people in the segment (whiskers: 95% interval)")
        ax.grid(axis="y", visible=False)
        ax.legend(handles=[Patch(facecolor="#8c8c8c", alpha=0.35, hatch="//", edgecolor="#8c8c8c",
                                 label="Population (upper, hatched)"),
                           Patch(facecolor="#8c8c8c", label="Customers (lower, solid)")], loc="upper right")
    return fig


def index_chart(results: Results) -> Figure:
    """Customer index per segment with its 95% interval; 100 = as common as in the population."""
    segments = sorted(results.segments, key=lambda s: np.nan_to_num(s["index"], nan=-1, posinf=1e9))
    index = np.array([s["index"] for s in segments], dtype=float)
    low = np.array([s["index_ci"][0] for s in segments], dtype=float)
    high = np.array([s["index_ci"][1] for s in segments], dtype=float)
    cap = max(200.0, float(np.nanmax(np.where(np.isfinite(high), high, np.nan), initial=0)) * 1.1)
    with _style():
        fig, ax = _subplots(figsize=(WIDTH, 0.42 * len(segments) + 1.0))
        y = np.arange(len(segments))
        colours = [segment_colour(s["id"]) for s in segments]
        ax.barh(y, _finite(index, cap), color=colours, height=0.6)
        ax.errorbar(_finite(index, cap), y, xerr=[_finite(index, cap) - _finite(low, cap),
                                                  _finite(high, cap) - _finite(index, cap)],
                    fmt="none", ecolor="#222222", elinewidth=1, capsize=3)
        ax.axvline(100, color="#222222", linewidth=1.2, linestyle="--")
        ax.text(100, len(segments) - 0.45, " 100 = as common as in the population", fontsize=7,
                va="bottom", ha="left")
        for row, value, end in zip(y, index, _finite(high, cap)):
            text = "∞" if np.isinf(value) else ("–" if np.isnan(value) else f"{value:.0f}")
            ax.text(np.nan_to_num(end) + cap * 0.01, row, text, va="center", fontsize=7.5, zorder=4,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.9})
        ax.set_yticks(y, [_wrap(short_label(s), 40) for s in segments], fontsize=7.5)
        ax.set_xlim(0, cap * 1.08)
        ax.set_ylim(-0.6, len(segments) - 0.1)
        ax.set_xlabel("Customer index (bar) with 95% interval (whiskers)")
        ax.grid(axis="y", visible=False)
    return fig


def gains(results: Results) -> Figure:
    """Gains chart: mailing segments in index order, share of population mailed vs share of the
    current customers reached; the headline's selection is marked, the set-aside group is the
    grey last step."""
    table = mailing_gains(results)
    aside = results.segment(SET_ASIDE) if any(s["id"] == SET_ASIDE for s in results.segments) else None
    chosen = set(results.summary["targeting"]["segments"])
    x = np.concatenate([[0.0], table["cumulative_population_share"].to_numpy()])
    y = np.concatenate([[0.0], table["cumulative_customer_share"].to_numpy()])
    with _style():
        fig, ax = _subplots(figsize=(WIDTH * 0.75, 3.8))
        ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="Mailing at random")
        ax.plot(x, y, color=NEUTRAL, linewidth=1.2, zorder=1)
        for i, segment in enumerate(table["segment"], start=1):
            ax.scatter(x[i], y[i], s=60 if segment in chosen else 30, color=segment_colour(segment),
                       edgecolor="#222222" if segment in chosen else "white", linewidth=1.2, zorder=3)
            ax.annotate(str(segment), (x[i], y[i]), textcoords="offset points", xytext=(-9, 4), fontsize=7.5)
        if aside is not None and aside["population_share"] > 0:
            ax.plot([x[-1], 1], [y[-1], 1], color=SET_ASIDE_COLOUR, linewidth=1.2, linestyle=":",
                    label="Set-aside group (not mailed)")
        head = results.summary["targeting"]
        ax.scatter([], [], s=60, color="white", edgecolor="#222222", label="Headline selection")
        ax.annotate(f"{head['population_share']:.0%} mailed → {head['customer_share']:.0%} of current customers",
                    (head["population_share"], head["customer_share"]), textcoords="offset points",
                    xytext=(12, -14), fontsize=7.5)
        gains_axes(ax)
    return fig


def gains_axes(ax) -> None:
    """The axes every gains chart shares: population mailed (cost) against current customers reached."""
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Share of the population mailed")
    ax.set_ylabel("Share of current customers reached")
    ax.legend(loc="lower right")


def segment_traits(results: Results, segment_id: int) -> Figure:
    """What distinguishes one segment: effect sizes of its strongest traits, phrases as labels.

    For the set-aside group (which has no cluster traits) it shows how set-aside people differ
    from everyone else instead.
    """
    if segment_id == SET_ASIDE:
        return set_aside_profile(results)
    return level_traits(results.segment(segment_id))


def level_traits(entry: dict) -> Figure:
    """A group's or type's strongest traits; every bar points right: more of what its label says."""
    values, labels = effect_rows(entry)
    colour = segment_colour(entry["id"] if entry.get("level") != "group" else entry["id"] * 3)
    return _effect_bars(values, labels, colour, _wrap(label(entry), 80))


QUADRANT_COLOURS = {"core": "#029e73", "developmental": "#0173b2", "niche": "#de8f05", "low priority": "#8c8c8c"}


def game_plan(results: Results) -> Figure:
    """Esri-style game plan: types by share of current customers (x) and index (y, log scale)."""
    plan = results.summary["game_plan"]
    types = [t for t in level(results, "types") if t["id"] != SET_ASIDE and t["index"]]
    with _style():
        fig, ax = _subplots(figsize=(WIDTH, 4.2))
        for t in types:
            colour = QUADRANT_COLOURS.get(t.get("game_plan"), NEUTRAL)
            ax.scatter(t["customer_share"], t["index"], s=20 + 900 * t["population_share"], color=colour,
                       alpha=0.8, edgecolor="white", linewidth=0.8, zorder=3)
        ax.set_yscale("log")
        ax.axhline(plan["index_threshold"], color="#444444", linestyle="--", linewidth=0.9)
        ax.axvline(plan["share_threshold"], color="#444444", linestyle="--", linewidth=0.9)
        ax.axhline(100, color="#bbbbbb", linewidth=0.8)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
        indexes = [t["index"] for t in types]
        ax.set_ylim(max(min(indexes) * 0.8, 1), max(indexes) * 1.25)
        ax.set_xlim(0, max(t["customer_share"] for t in types) * 1.15)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0f}")
        ax.set_xlabel("Share of current customers in the type")
        ax.set_ylabel("Customer index (log scale; 100 = as in the population)")
        ax.legend(handles=[Patch(color=c, label=q) for q, c in QUADRANT_COLOURS.items()], loc="lower right",
                  ncol=4)
        _label_points(ax, [t["code"] for t in types], [t["customer_share"] for t in types],
                      [t["index"] for t in types])
    return fig


def _label_points(ax: Axes, labels: list[str], x: list[float], y: list[float]) -> None:
    """Label scatter points without overlaps: small types crowd one corner of the game plan,
    where fixed offsets printed "E3", "C3" and "E1" on top of each other. adjustText moves
    the labels apart (a fixed number of iterations and its own fixed seed: the same chart every
    render) and draws a thin line from a moved label to its point. Its default margins
    (``expand`` 1.05 x 1.2) left two crowded labels touching; 1.2 x 1.4 keeps them apart."""
    texts = [ax.text(a, b, label, fontsize=7) for label, a, b in zip(labels, x, y)]
    adjust_text(texts, x=x, y=y, ax=ax, iter_lim=500, expand=(1.2, 1.4), min_arrow_len=8,
                arrowprops={"arrowstyle": "-", "color": "#777777", "linewidth": 0.5})


def _effect_bars(effects: np.ndarray, phrases: list[str], colour: str, title: str,
                 empty: str = "No trait differs from the population by 0.2 standard deviations or more",
                 ) -> Figure:
    """Horizontal bars, strongest on top, each labelled with its phrase.

    Callers pass sizes (>= 0) and the phrase of the side the segment is on, so a bar to the
    right always means "more of what the label says", whatever the code direction of the scale.
    """
    with _style():
        fig, ax = _subplots(figsize=(WIDTH, 0.42 * max(len(effects), 1) + 1.1))
        if len(effects) == 0:
            ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            return fig
        y = np.arange(len(effects))[::-1]
        ax.barh(y, effects, color=colour, height=0.6)
        ax.set_yticks(y, [_wrap(p, 40) for p in phrases], fontsize=7.5)
        ax.axvline(0, color="#444444", linewidth=0.8)
        limit = max(1.0, float(np.max(np.abs(effects))) * 1.15)
        ax.set_xlim(min(0.0, float(np.min(effects)) * 1.15), limit)
        ax.set_xlabel("How much more than the population\n"
                      "(standardised difference; 0.2 small, 0.5 clear, 0.8 marked)", fontsize=7.5)
        # From the figure's left edge, not the axes': the phrases on the left take a third of the
        # width, and a long segment name starting after them ran off the page.
        fig.suptitle(title, x=0.01, ha="left", fontsize=STYLE["axes.titlesize"], fontweight="bold")
        ax.grid(axis="y", visible=False)
    return fig


FIGURES = {"missingness": missingness, "set_aside_profile": set_aside_profile, "scree": scree,
           "component_weights": component_weights, "k_curves": k_curves, "segment_shares": segment_shares,
           "index_chart": index_chart, "gains": gains, "game_plan": game_plan}
