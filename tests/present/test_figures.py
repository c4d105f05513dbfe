"""The report's figures: right shape, right labels, and one colour per segment on every chart."""
from __future__ import annotations

import struct

import pytest
from matplotlib import rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from analysis.present import figures
from analysis.present import segments as seg
from analysis.constants import SET_ASIDE
from analysis.present.words import short_label
from analysis.results import load_results


PAD = rcParams["savefig.pad_inches"]


@pytest.fixture(scope="module")
def res(small_results):
    return load_results(small_results)


def bars(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def colours(patches) -> list[str]:
    return [to_hex(p.get_facecolor()) for p in patches]


def tick_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def unwrap(text: str) -> str:
    return text.replace("\n", " ")


def test_palette_is_keyed_by_segment_id_and_grey_for_set_aside(res):
    palette = figures.palette(res)
    assert set(palette) == {s["id"] for s in res.segments}
    assert palette[SET_ASIDE] == figures.SET_ASIDE_COLOUR
    clustered = [palette[s["id"]] for s in res.clusters]
    # distinct while the palette lasts (types can outnumber it), never grey
    assert len(set(clustered)) == min(len(clustered), len(figures.SEGMENT_COLOURS))
    assert figures.SET_ASIDE_COLOUR not in clustered
    assert figures.segment_colour(3) == figures.segment_colour(3 + len(figures.SEGMENT_COLOURS))


def panel_boxes(ax, renderer) -> list:
    """Where a panel draws: its plotting area, titles and axis labels, in display pixels."""
    titles = {ax.get_title(loc=loc) for loc in ("left", "center", "right")} - {""}
    texts = [t for t in ax.findobj(Text) if t.get_visible() and t.get_text()
             and (t in (ax.xaxis.label, ax.yaxis.label) or t.get_text() in titles)]
    return [ax.get_window_extent(renderer), *(t.get_window_extent(renderer) for t in texts)]


def overlaps(first, second) -> bool:
    return min(first.x1, second.x1) - max(first.x0, second.x0) > 1 and \
        min(first.y1, second.y1) - max(first.y0, second.y0) > 1


def test_every_figure_fits_the_pdf_and_its_panels_do_not_overlap(res):
    """Drawn as the pages draw them (``bbox_inches="tight"``): a label that spills out of the
    figure widens the PNG past the page width, and a title or label running into the next panel
    overlaps it."""
    made = {name: make(res) for name, make in figures.FIGURES.items()}
    made.update({f"traits {s['id']}": figures.segment_traits(res, s["id"]) for s in res.segments})
    for name, fig in made.items():
        data = figures.png(fig)
        width, height = struct.unpack(">II", data[16:24])  # the PNG's IHDR chunk
        # "tight" crops to the drawn content plus savefig.pad_inches on each side
        assert width / figures.DPI <= figures.WIDTH + 2 * PAD + 0.01, (name, width / figures.DPI)
        assert fig.axes and height > 0, name
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        panels = [panel_boxes(ax, canvas.get_renderer()) for ax in fig.axes if ax.get_visible()]
        for i, first in enumerate(panels):
            for second in panels[i + 1:]:
                assert not any(overlaps(a, b) for a in first for b in second), (name, "panels overlap")


def test_missingness_has_two_bars_per_feature_and_the_drop_limit(res):
    fig = figures.missingness(res, top=12)
    ax = fig.axes[0]
    quality = res.table("quality_population")
    shown = min(12, int((quality["missing_share"] > 0).sum()))
    assert len(bars(ax)) == 2 * shown
    assert len(tick_texts(ax)) == shown
    assert ax.get_xlabel() == "People with the value missing or unknown"
    limit = res.summary["settings"]["column_missing_threshold"]
    assert any(line.get_xdata()[0] == limit for line in ax.get_lines())
    dropped = set(res.summary["cleaning"]["dropped"])
    for tick in ax.get_yticklabels():
        feature, *flag = tick.get_text().rsplit("(", 1)[-1].rstrip(")").split(", ")
        assert (to_hex(tick.get_color()) == "#b00020") == (feature in dropped) == (flag == ["dropped"])


def test_scree_shows_components_and_the_running_total(res):
    fig = figures.scree(res, first=15)
    left, right = fig.axes
    assert len(bars(left)) == min(15, len(res.table("scree")))
    assert right.get_title() == "Running total"
    labels = [t.get_text() for t in right.get_legend().get_texts()]
    assert f"{res.summary['pca']['n_components']} components kept" in labels


def test_component_weights_label_each_feature_in_words(res):
    fig = figures.component_weights(res, n=2)
    assert len(fig.axes) == 2
    for ax, component in zip(fig.axes, res.summary["pca"]["components"]):
        assert len(bars(ax)) == len(component["top_weights"])
        assert all(p.get_width() >= 0 for p in bars(ax))
        assert ax.get_title(loc="left").startswith(f"Component {fig.axes.index(ax) + 1} (")
    # the strongest features are described by the component's own pole words
    top = [unwrap(t) for t in tick_texts(fig.axes[0])][::-1]
    assert top[:3] == res.summary["pca"]["components"][0]["positive_pole"]


def test_k_curves_mark_the_chosen_k(res):
    fig = figures.k_curves(res)
    assert [ax.get_title() for ax in fig.axes] == ["Inertia (lower = tighter)", "Silhouette (higher = clearer)",
                                                   "Stability of refits"]
    curves = res.table("k_curves")
    assert list(fig.axes[1].get_lines()[0].get_xdata()) == list(curves["k"])
    assert f"k = {res.summary['k_selection']['k']}" in fig._suptitle.get_text()


def test_shares_chart_has_population_and_customer_bars_in_segment_colours(res):
    ax = figures.segment_shares(res).axes[0]
    patches = bars(ax)
    assert len(patches) == 2 * len(res.segments)
    labels = [unwrap(t) for t in tick_texts(ax)]
    assert labels[0] == short_label(res.segment(SET_ASIDE))  # bottom row: the set-aside group
    for segment, pair in zip(reversed([*res.clusters, res.segment(SET_ASIDE)]), zip(patches[::2], patches[1::2])):
        assert set(colours(pair)) == {figures.segment_colour(segment["id"])}


def test_index_chart_has_one_bar_per_segment_and_a_line_at_100(res):
    ax = figures.index_chart(res).axes[0]
    patches = bars(ax)
    assert len(patches) == len(res.segments)
    by_label = dict(zip([unwrap(t) for t in tick_texts(ax)], colours(patches)))
    for segment in res.segments:
        assert by_label[short_label(segment)] == figures.segment_colour(segment["id"])
    widths = [p.get_width() for p in patches]
    assert widths == sorted(widths)  # largest index on top
    assert any(list(line.get_xdata()) == [100, 100] for line in ax.get_lines())


def test_gains_chart_has_one_point_per_segment_and_the_random_line(res):
    ax = figures.gains(res).axes[0]
    points = ax.collections[: len(res.clusters)]
    assert len(points) == len(res.clusters)
    assert {to_hex(p.get_facecolor()[0]) for p in points} == {figures.segment_colour(s["id"]) for s in res.clusters}
    assert "Mailing at random" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert ax.get_xlabel() == "Share of the population mailed"


def test_traits_chart_uses_phrases_as_labels_and_the_segment_colour(res):
    for segment in res.clusters:
        ax = figures.segment_traits(res, segment["id"]).axes[0]
        traits = segment["top_traits"]
        assert len(bars(ax)) == len(traits)
        labels = seg.effect_rows(segment)[1]  # the phrase, with the difference in points for flags
        assert [unwrap(t) for t in tick_texts(ax)] == labels or not traits  # top down
        assert set(colours(bars(ax))) <= {figures.segment_colour(segment["id"])}
    aside = figures.segment_traits(res, SET_ASIDE).axes[0]
    assert set(colours(bars(aside))) == {figures.SET_ASIDE_COLOUR}
    assert len(bars(aside)) == min(8, len(res.table("set_aside_profile")))


def test_same_segment_same_colour_on_every_chart(res):
    target = res.targets[0]
    label = short_label(target)
    index_ax = figures.index_chart(res).axes[0]
    index_colour = dict(zip([unwrap(t) for t in tick_texts(index_ax)], colours(bars(index_ax))))[label]
    traits_colour = colours(bars(figures.segment_traits(res, target["id"]).axes[0]))[0]
    shares_ax = figures.segment_shares(res).axes[0]
    row = [unwrap(t) for t in tick_texts(shares_ax)].index(label)
    shares_colour = colours(bars(shares_ax))[2 * row + 1]
    assert index_colour == traits_colour == shares_colour == figures.palette(res)[target["id"]]


def test_png_records_its_dpi_so_the_pdf_places_it_at_true_size(res, tmp_path):
    data = figures.png(figures.gains(res))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at = data.index(b"pHYs")
    per_metre = struct.unpack(">I", data[at + 4: at + 8])[0]
    assert round(per_metre * 0.0254) == figures.DPI
    path = figures.save(figures.index_chart(res), tmp_path / "charts" / "index.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_trait_bars_point_the_way_the_label_reads():
    """A segment built to be more family-minded has LOW SEMIO_FAM codes (1 = strongly family-minded).
    Its bar must point right under the label 'strongly family-minded', never left."""
    import numpy as np
    import pandas as pd

    from analysis.prepare.cleaning import CleanColumn
    from analysis.profile.describe import _traits
    from analysis.profile.traits import top_traits, trait_table

    columns = {"SEMIO_FAM": CleanColumn("SEMIO_FAM", "SEMIO_FAM", "scale", "Personality: family-minded",
                                        "strongly family-minded", "not family-minded"),
               "EWDICHTE": CleanColumn("EWDICHTE", "EWDICHTE", "scale", "Household density",
                                       "in thinly populated areas", "in densely populated areas")}
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 500)
    matrix = pd.DataFrame({"SEMIO_FAM": np.where(labels == 0, rng.integers(1, 3, 1000), rng.integers(4, 8, 1000)),
                           "EWDICHTE": np.where(labels == 0, rng.integers(1, 3, 1000), rng.integers(3, 7, 1000))},
                          dtype=np.float32)
    traits = trait_table(matrix, labels, columns)
    entry = {"id": 0, "code": "A1", "name": "Rural Families", "level": "type", "top_traits": _traits(top_traits(traits, 0))}
    ax = figures.level_traits(entry).axes[0]
    widths = {unwrap(label): bar.get_width() for label, bar in zip(tick_texts(ax)[::-1], bars(ax))}
    assert set(widths) == {"strongly family-minded", "in thinly populated areas"}
    assert all(width > 0 for width in widths.values())
    assert ax.get_xlim()[0] == 0  # nothing drawn to the left: no bar reads backwards


def test_crowded_game_plan_labels_do_not_overlap():
    """Small types crowd one corner of the game plan: their labels must stay readable."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    x = [0.010, 0.011, 0.012, 0.010, 0.013, 0.011, 0.012, 0.20]
    y = [25.0, 26.0, 24.5, 27.0, 25.5, 24.0, 26.5, 150.0]
    ax.scatter(x, y)
    ax.set_yscale("log")
    ax.set_xlim(0, 0.25)
    ax.set_ylim(10, 300)
    labels = [f"T{i}" for i in range(len(x))]
    figures._label_points(ax, labels, x, y)
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_text() in labels]
    assert len(boxes) == len(labels)
    overlaps = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]
    assert not overlaps
    plt.close(fig)


def test_alt_texts_of_the_type_charts_name_types_and_codes(res):
    """Charts of types say "types" (not the other level's "groups") and name types by code."""
    from analysis.present import alt_text
    types = len(res.clusters)
    assert f"each of {types} types and the set-aside group" in alt_text.segment_shares(res)
    assert "customer index per type" in alt_text.index_chart(res)
    order = alt_text.gains(res).split("mailed in the order ")[1].split(".")[0].split(", ")
    codes = {s["code"] for s in res.clusters}
    assert order and set(order) <= codes
