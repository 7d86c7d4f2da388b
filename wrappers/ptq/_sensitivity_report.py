"""Files of the sensitivity analysis: CSV tables, matplotlib PNG plots and the HTML page.

Everything is rendered to bytes here; :mod:`~torchqsim.ptq.sensitivity` writes the files
together (atomically). Plots use matplotlib's object API (``Figure`` + Agg canvas), so no global
pyplot state or display is touched.
"""

import csv
import html
import io
import math

__all__ = ["csv_bytes", "bar_chart_png", "histogram_png", "html_report"]


def csv_bytes(rows: list[dict]) -> bytes:
    """A CSV file (header from the first row's keys).

    Example::

        >>> csv_bytes([{"a": 1, "b": 2.5}]).decode().splitlines()
        ['a,b', '1,2.5']
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def bar_chart_png(labels: list[str], series: dict, title: str, ylabel: str,
                  reference: float | None = None, zoom: bool = False) -> bytes:
    """Grouped bars, one group per label, one bar per series (``{name: values}``; None or
    non-finite values are left out); an optional horizontal reference line (e.g. the FP32
    accuracy); `zoom` fits the y axis to the values instead of starting at 0.

    Example::

        >>> bar_chart_png(["a", "b"], {"x": [1.0, 2.0]}, "t", "y")[:4]
        b'\\x89PNG'
    """
    fig = _figure(max(6.0, 0.45 * len(labels) * max(1, len(series))), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    shown = []
    for i, (name, values) in enumerate(series.items()):
        pts = [(j + (i - (len(series) - 1) / 2) * width, v) for j, v in enumerate(values)
               if v is not None and math.isfinite(v)]
        ax.bar([x for x, _ in pts], [v for _, v in pts], width, label=name)
        shown += [v for _, v in pts]
    if zoom and shown:
        lo, hi = min(shown + [reference] * (reference is not None)), \
            max(shown + [reference] * (reference is not None))
        pad = 0.1 * (hi - lo) or 0.05 * abs(hi) or 1.0
        ax.set_ylim(lo - pad, hi + pad)
    if reference is not None:
        ax.axhline(reference, color="black", linestyle="--", linewidth=1, label="FP32")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return _png(fig)


def histogram_png(title: str, panels: list[tuple]) -> bytes:
    """One panel per ``(name, counts, lo, hi, encoding_min, encoding_max)``: a histogram of
    `counts` over ``[lo, hi]`` and, when given, dashed lines at the encoding range.

    Example::

        >>> histogram_png("t", [("out", [1, 3, 2], -1.0, 1.0, -0.5, 0.9)])[:4]
        b'\\x89PNG'
    """
    fig = _figure(5.0 * len(panels), 3.5)
    for i, (name, counts, lo, hi, emin, emax) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        n = len(counts)
        step = (hi - lo) / n if n and hi > lo else 1.0
        ax.bar([lo + (k + 0.5) * step for k in range(n)], counts, width=step, color="tab:blue")
        for v in (emin, emax):
            if v is not None:
                ax.axvline(v, color="tab:red", linestyle="--", linewidth=1)
        ax.set_yscale("symlog")
        ax.set_title(f"{title}: {name}", fontsize=9)
    return _png(fig)


def _table(rows: list[dict]) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r.values())
                   + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    return f"{v:.5g}" if isinstance(v, float) else "" if v is None else str(v)


def html_report(title: str, summary: list[dict], layers: list[dict], plots: list[str],
                tables: list[str], histograms: dict) -> bytes:
    """The one-page report: summary table, plots, per-layer table, and links to the tables and
    per-layer histograms (file names relative to the page).

    Example::

        >>> b"<img src=\\"a.png\\"" in html_report("t", [], [], ["a.png"], [], {})
        True
    """
    links = "".join(f'<li><a href="{html.escape(f)}">{html.escape(f)}</a></li>' for f in tables)
    hists = "".join(f'<li><a href="{html.escape(f)}">{html.escape(name)}</a></li>'
                    for name, f in histograms.items())
    imgs = "".join(f'<p><img src="{html.escape(p)}" alt="{html.escape(p)}"></p>' for p in plots)
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:2px 6px;font-size:13px}}img{{max-width:100%}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<h2>Model</h2>{_table(summary)}
<h2>Plots</h2>{imgs}
<h2>Per layer</h2>{_table(layers)}
<h2>Tables</h2><ul>{links}</ul>
<h2>Histograms (FP32 values; dashed: encoding range)</h2><ul>{hists}</ul>
</body></html>
"""
    return page.encode()
