"""`linear-nets report`: one self-contained HTML page (inline SVG, PNG data URIs, one `<style>`, no script) about one
run, or comparing several runs of one model. What cannot be shown is one line in the page (`Report.missing`), never
a failed report.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from linear_nets import __version__
from linear_nets.errors import LinearNetsError
from linear_nets.pipeline.catalog import RunRecord

COEFFICIENT_COLUMNS = (("coefficients", "coefficient"), ("standard_errors", "std error"), ("t_values", "t"),
                       ("p_values", "P>|t|"))  # fmt: skip
"""summary.json's name -> value maps shown as columns of the coefficient table, in order (those present)."""
REGRESSION_SCALARS = ("residual_std", "train_r2", "adj_r2", "test_r2", "train_mse", "test_mse", "f_statistic",
                      "f_pvalue", "log_likelihood", "aic", "bic", "df_model", "df_resid", "condition_number",
                      "cov_type", "final_train_loss", "train_rows", "test_rows", "epochs", "wall_seconds")  # fmt: skip
"""summary.json's single numbers of a linear regression, shown in this order where present."""
SOFTMAX_METRICS = (("test_accuracy", "test acc"), ("val_accuracy", "val acc"), ("final.train_loss", "train loss"),
                   ("final.train_accuracy", "train acc"), ("epochs", "epochs"),
                   ("train_seconds", "train s"))  # fmt: skip
LINREG_METRICS = (("test_r2", "test R²"), ("train_r2", "train R²"), ("test_mse", "test MSE"),
                  ("final_train_loss", "train loss"), ("epochs", "epochs"))  # fmt: skip

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1180px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; } td, th { padding: 2px 10px; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f6f6f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.missing { background: #fff4e5; border-left: 4px solid #f0a020; padding: 6px 10px; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; } figure { margin: 0; text-align: center; font-size: 12px; }
figure.weight img, figure.mistake img { width: 104px; image-rendering: pixelated; border: 1px solid #ccc; }
figure.mistake figcaption { color: #b00; } svg { max-width: 100%; height: auto; }
.legend img { width: 224px; height: 12px; image-rendering: pixelated; vertical-align: middle; }
.meta { color: #666; }
"""


@dataclass
class Report:
    """A page being built: its title, its HTML parts, and what could not be shown (one line each)."""

    title: str
    parts: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def add(self, *parts: str) -> None:
        self.parts.extend(parts)

    def lack(self, line: str) -> None:
        """Say in the page (and to the caller) what is missing."""
        self.missing.append(line)
        self.parts.append(f'<p class="missing">{esc(line)}</p>')

    def html(self) -> str:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{esc(self.title)}'
                f'</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{esc(self.title)}</h1>\n'
                f'<p class="meta">linear-nets {esc(__version__)} report, made {stamp}</p>\n'
                + "\n".join(self.parts) + "\n</body>\n</html>\n")  # fmt: skip


def esc(value: Any) -> str:
    """Text for HTML: everything a run directory holds is escaped (a file name may contain `<script>`)."""
    return html.escape(str(value), quote=True)


def number(value: Any, digits: int = 4) -> str:
    """A number as the page shows it: `digits` significant digits, integers whole, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return esc(value)
    return str(value) if isinstance(value, int) else f"{value:.{digits}g}"  # nan and inf as str writes them


# --- figures inside the page ------------------------------------------------------------------------------------


def svg(fig: Any, name: str) -> str:
    """A matplotlib figure as inline SVG (closed afterwards), ids salted with `name`, metadata dropped."""
    import matplotlib

    from linear_nets.plotting import pyplot

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"linear-nets-{name}"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    pyplot().close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    return f'<figure class="plot" id="fig-{esc(name)}">{text}</figure>'


def png_uri(image: Any, cmap: str = "gray", vmin: float | None = None, vmax: float | None = None) -> str:
    """A 2-d array as a PNG data URI through a colour map."""
    from matplotlib import image as mpimg

    buffer = io.BytesIO()
    mpimg.imsave(buffer, image, cmap=cmap, vmin=vmin, vmax=vmax, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """An HTML table; cells are given as HTML (escape text with `esc`), numbers right-aligned by `num`."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(content: str) -> str:
    numeric = re.fullmatch(r"-?[\d.]+(e[-+]?\d+)?|-|nan|inf", content) is not None
    return f'<td class="num">{content}</td>' if numeric else f"<td>{content}</td>"


def _field_rows(values: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """The rows of a JSON object's field table (nested objects flattened as `a.b`, long lists shortened)."""
    rows: list[tuple[str, str]] = []
    for name in sorted(values):
        value = values[name]
        if isinstance(value, dict) and value and len(value) <= 20:
            rows += _field_rows(value, f"{prefix}{name}.")
            continue
        if isinstance(value, list) and len(value) > 12:
            value = f"[{', '.join(map(str, value[:12]))}, ... ({len(value)} values)]"
        rows.append((esc(prefix + name), number(value)))
    return rows


# --- curves -----------------------------------------------------------------------------------------------------


SOFTMAX_CURVES = (("train_loss", "train loss"), ("train_accuracy", "train accuracy"),
                  ("val_accuracy", "validation accuracy"), ("test_accuracy", "test accuracy"))  # fmt: skip
LINREG_CURVES = (("train_loss", "train loss"),)


def curves(report: Report, series: Sequence[tuple[str, list[dict[str, Any]]]], model: str, missing: str) -> None:
    """The "Curves" section: one panel per metric of `model`, one line per (label, metrics rows); `missing` if none."""
    from matplotlib.ticker import MaxNLocator

    from linear_nets.plotting import subplots

    report.add("<h2>Curves</h2>")
    if not series:
        report.lack(missing)
        return
    columns = SOFTMAX_CURVES if model == "softmax" else LINREG_CURVES
    shown = [(key, label) for key, label in columns if any(r.get(key) is not None for _, rows in series for r in rows)]
    fig, axes = subplots(1, max(1, len(shown)), figsize=(5.2 * max(1, len(shown)), 3.4), layout="constrained")
    for ax, (key, label) in zip(axes, shown, strict=False):
        for name, rows in series:
            points = [(r["epoch"], r[key]) for r in rows if r.get(key) is not None and r.get("epoch") is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker="." if len(points) < 30 else None, label=name)
        ax.set(xlabel="epoch", title=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if model == "linreg" and key == "train_loss":
            ax.set_yscale("log")
        ax.grid(True)
    if len(series) > 1 and shown:
        axes[0].legend(fontsize=7)
    report.add(svg(fig, "curves"))


# --- one softmax run --------------------------------------------------------------------------------------------


def softmax_section(report: Report, record: RunRecord, data_dir: str | None = None) -> None:
    """What a softmax run learned: weights, mistakes, per-class scores, calibration, confusion (as far as it can)."""
    from linear_nets.pipeline.evaluation import evaluate_classifier, weights_figure
    from linear_nets.pipeline.saved import load_softmax, table_spec
    from linear_nets.plotting import plot_per_class, plot_reliability

    if (run := _trained_run(report, record, "its weights, mistakes, scores and calibration")) is None:
        return
    try:
        model, config, classes = load_softmax(run)
    except LinearNetsError as exc:
        report.lack(f"the model cannot be loaded: {exc}")
        return
    report.add("<h2>What each class's weights look for</h2>")
    if run.spec is None:
        report.add(weight_pictures(model.state_tensors()["W"].detach().cpu().double(), classes, config.resize or 28))
    else:  # a table file, or a scikit-learn estimator's X
        report.add(svg(weights_figure(model, classes, None, table_spec(run).feature_names), "weights"))
    batches, images = _test_data(report, run, config, data_dir)
    if batches is None:
        return
    evaluation = evaluate_classifier(model, batches, classes)
    scores = evaluation.scores
    report.add(f"<p>Scored again on {scores.n} test {'images' if images is not None else 'rows'}: accuracy "
               f"<b>{scores.accuracy:.4f}</b>, mean cross-entropy {scores.loss:.4f}, expected calibration error "
               f"{evaluation.reliability.ece:.4f}.</p>")  # fmt: skip
    if images is not None:
        report.add("<h2>Its most confident mistakes</h2>", mistake_pictures(evaluation, images))
    per_class = [(esc(s.name), f"{s.precision:.4f}", f"{s.recall:.4f}", f"{s.f1:.4f}", str(s.support))
                 for s in evaluation.per_class]  # fmt: skip
    report.add("<h2>Scores per class</h2>",
               table(("class", "precision", "recall (its accuracy)", "F1", "support"), per_class, "per-class"),
               svg(plot_per_class(evaluation.per_class), "per-class"))  # fmt: skip
    report.add("<h2>Calibration</h2>", "<p>Each bar: the accuracy of the predictions made with that confidence; "
               "on the diagonal, a probability of 0.8 is right 80% of the time.</p>",
               svg(plot_reliability(evaluation.reliability), "reliability"))  # fmt: skip
    report.add("<h2>Confusion matrix</h2>", confusion_table(scores.confusion.tolist(), classes))


def _trained_run(report: Report, record: RunRecord, what: str) -> Any:
    """The record's run if it has its trained model; else None, with a line saying `what` is shown once it finishes."""
    if (record.path / "model.safetensors").exists():
        return record.run
    report.lack(f"{record.path} has no trained model yet ({record.state_text()}): {what} are shown once it finishes")
    return None


def _test_data(report: Report, run: Any, config: Any, data_dir: str | None) -> tuple[Any, Any]:
    """(batches of the run's test data, its images or None), or (None, None) with a line saying why not."""
    options = run.config.get("options") or {}
    if run.spec is not None and not options.get("table"):
        report.lack("a scikit-learn estimator's run records no test rows: the scores per class, calibration and "
                    "confusion matrix are left out (`linear-nets evaluate RUN --data FILE` scores one)")  # fmt: skip
        return None, None
    try:
        if options.get("table"):
            from linear_nets.pipeline.saved import table_spec
            from linear_nets.pipeline.tables import TableOptions, held_out_rows

            table = TableOptions(**options["table"])
            if table.stream:
                report.lack("the table was streamed (--stream): the report does not read it again, so the scores "
                            "per class, the calibration and the confusion matrix are left out")  # fmt: skip
                return None, None
            # the rows it held out, found again in the file it recorded and encoded by its own schema
            batches, _ = held_out_rows(table, table_spec(run), config.seed, run.config.get("data", {}))
            if not len(batches[0][1]):
                report.lack("the run held out no test rows: nothing to score")
                return None, None
            return batches, None
        from linear_nets.data.fashion_mnist import load_data_fashion_mnist

        _, test_iter = load_data_fashion_mnist(4096, config.resize, data_dir or options.get("data_dir"))
        return test_iter, test_iter.tensors[0]
    except LinearNetsError as exc:
        report.lack(f"the test data cannot be read ({exc}): the scores, mistakes and calibration are left out")
        return None, None


def weight_pictures(W: Any, classes: Sequence[str], side: int) -> str:
    """One picture per class (`<figure class="weight">`), all on one diverging scale centred on 0, and its legend."""
    import numpy as np

    from linear_nets.plotting import WEIGHT_CMAP, class_weight_images, weight_limit

    limit = weight_limit(W)
    pictures = [(f"weights of class {esc(name)}", png_uri(picture, WEIGHT_CMAP, -limit, limit), esc(name))
                for name, picture in zip(classes, class_weight_images(W, (side, side)), strict=True)]  # fmt: skip
    ramp = png_uri(np.linspace(-limit, limit, 256)[None, :], WEIGHT_CMAP, -limit, limit)
    legend = (f'<p class="legend">weight {-limit:.3g} <img alt="colour scale" src="{ramp}"> {limit:.3g}: red pixels '
              "raise the class's score, blue ones lower it.</p>")  # fmt: skip
    return _grid("weight", pictures) + legend


def mistake_pictures(evaluation: Any, images: Any) -> str:
    """The most confident mistakes as pictures, each with its true class, the predicted one and its probability."""
    P, y, classes = evaluation.scores.probabilities, evaluation.scores.labels, evaluation.classes
    pictures = []
    for i in evaluation.mistakes():
        image = images[i].float().reshape(images.shape[-2], images.shape[-1]).numpy()
        image = image / 255 if images.dtype.is_floating_point is False else image
        caption = f"true {esc(classes[int(y[i])])}<br>{esc(classes[int(P[i].argmax())])} {float(P[i].max()):.0%}"
        pictures.append((f"test image {i}", png_uri(image, "gray", 0, 1), caption))
    return _grid("mistake", pictures) if pictures else "<p>No mistakes.</p>"


def _grid(kind: str, pictures: list[tuple[str, str, str]]) -> str:
    """`<div class="grid" id="{kind}s">` of `<figure class="{kind}">`s, one per (alt text, image URI, caption)."""
    figures = "".join(f'<figure class="{kind}"><img alt="{alt}" src="{uri}"><figcaption>{caption}</figcaption></figure>'
                      for alt, uri, caption in pictures)  # fmt: skip
    return f'<div class="grid" id="{kind}s">{figures}</div>'


def confusion_table(matrix: list[list[int]], classes: Sequence[str]) -> str:
    """Rows: true class; columns: predicted; each cell shaded by its share of the row."""
    header = ["true \\ predicted", *(esc(c) for c in classes)]
    rows = [[esc(name), *(_shaded(value, value / max(sum(row), 1)) for value in row)]
            for name, row in zip(classes, matrix, strict=True)]  # fmt: skip
    return table(header, rows, "confusion")


def _shaded(value: int, share: float) -> str:
    return (f'<span style="display:block;background:rgba(31,119,180,{share:.2f});'
            f'color:{"#fff" if share > 0.5 else "#000"}">{value}</span>')  # fmt: skip


# --- one linear-regression run ----------------------------------------------------------------------------------


def coefficient_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The coefficient table of summary.json's columns present (a synthetic run: its estimated w and b, with errors)."""
    if isinstance(summary.get("coefficients"), dict):
        coefficients = dict(summary["coefficients"])
        if "intercept" not in coefficients and isinstance(summary.get("intercept"), int | float):
            coefficients["intercept"] = summary["intercept"]
        maps = {"coefficients": coefficients}
        maps |= {key: summary[key] for key, _ in COEFFICIENT_COLUMNS[1:] if isinstance(summary.get(key), dict)}
        columns = [(key, label) for key, label in COEFFICIENT_COLUMNS if key in maps]
        robust = summary.get("cov_type", "nonrobust") != "nonrobust"  # a robust covariance's tests are normal: z
        header = ["", *(label.replace("t", "z") if robust and label in ("t", "P>|t|") else label
                        for _, label in columns)]  # fmt: skip
        rows = [[esc(name), *(number(maps[key].get(name), 6) for key, _ in columns)] for name in coefficients]
        intervals = summary.get("conf_int")
        if isinstance(intervals, dict):
            level = summary.get("conf_level", 0.95)
            low = (1 - level) / 2 if isinstance(level, int | float) else None
            header += [f"[{low:g}", f"{1 - low:g}]"] if low is not None else ["[low", "high]"]
            for name, row in zip(coefficients, rows, strict=True):
                pair = intervals.get(name)
                ok = isinstance(pair, list) and len(pair) == 2
                row += [number(pair[0], 6), number(pair[1], 6)] if ok else ["-", "-"]
        return header, rows
    w, b = summary.get("estimated_w"), summary.get("estimated_b")
    if isinstance(w, list):
        errors = summary.get("error_w") if isinstance(summary.get("error_w"), list) else [None] * len(w)
        rows = [[f"w{i + 1}", number(v, 6), number(e, 6)] for i, (v, e) in enumerate(zip(w, errors, strict=False))]
        rows.append(["b", number(b, 6), number(summary.get("error_b"), 6)])
        return ["", "estimate", "error (true - estimate)"], rows
    return [], []


def linreg_section(report: Report, record: RunRecord) -> None:
    """A linear regression's coefficient table, its numbers, and its residual plots on the rows it was fitted to."""
    summary = record.summary or {}
    header, rows = coefficient_rows(summary)
    report.add("<h2>Coefficients</h2>")
    if rows:
        report.add(table([esc(h) for h in header], rows, "coefficients"))
        if "standard_errors" not in summary:
            report.add('<p class="meta">No standard errors in this run\'s summary.json: runs trained by a later '
                       "linear-nets (the least-squares summary) add them.</p>")  # fmt: skip
    else:
        report.lack("no coefficients: summary.json is missing or holds none")
    scalars = [(esc(k), number(summary[k], 6)) for k in REGRESSION_SCALARS if k in summary]
    if scalars:
        report.add(table(("", "value"), scalars, "regression-summary"))
    report.add("<h2>Residuals</h2>")
    if (run := _trained_run(report, record, "its residual plots")) is None:
        return
    try:
        diagnostics = linreg_diagnostics(run)
    except LinearNetsError as exc:
        report.lack(f"the residual plots are left out: {exc}")
        return
    if diagnostics is None:
        report.lack("the residual plots are left out: the table was streamed (--stream), the report does not read "
                    "it again")  # fmt: skip
        return
    from linear_nets.plotting import plot_regression_diagnostics

    report.add(f"<p>{len(diagnostics.residuals)} training rows; residual standard error "
               f"{diagnostics.residual_std:.6g}.</p>")  # fmt: skip
    report.add(svg(plot_regression_diagnostics(diagnostics), "residuals"))


def linreg_diagnostics(run: Any) -> Any:
    """The residual diagnostics of a linreg run on its training rows (None for a streamed table)."""
    import torch

    from linear_nets.diagnostics import regression_diagnostics
    from linear_nets.pipeline.saved import load_linreg, synthetic_options, synthetic_problem, table_spec

    config = run.fit_config
    table_options = (run.config.get("options") or {}).get("table")
    if table_options:
        from linear_nets.pipeline.tables import TableOptions, held_out_rows

        options = TableOptions(**table_options)
        if options.stream:
            return None
        # the rows it trained on, found again in the file it recorded and encoded by its own schema
        [(X, y)], _ = held_out_rows(options, table_spec(run), config.seed, run.config.get("data", {}), torch.float64,
                                    part="train")  # fmt: skip
    else:
        _, X, y = synthetic_problem(synthetic_options(run), config.seed)
    w, b, _, _ = load_linreg(run)
    return regression_diagnostics(X.double(), y.double().reshape(-1), w, float(b))


# --- pages ------------------------------------------------------------------------------------------------------


def single_run_page(record: RunRecord, data_dir: str | None = None) -> Report:
    """The run's identity and state, its config and summary, its curves, and what its model learned."""
    report = Report(f"Run {record.path.name}")
    impl = record.config.get("impl", "")
    report.add(f"<p><b>{esc(record.model)}</b> ({esc(impl)}) on {esc(record.data)}, started "
               f"{esc(record.started or '?')}: <b>{esc(record.state_text())}</b>.</p>")  # fmt: skip
    for problem in record.problems:
        report.lack(problem)
    if record.state in ("running", "interrupted"):
        report.lack(f"this run is {record.state_text()}: it has no summary yet, only its curves so far")
    report.add("<h2>Config</h2>", table(("field", "value"), _field_rows(record.config), "config"))
    if record.summary is not None and record.model == "softmax":  # a regression's numbers get their own tables
        shown = {k: v for k, v in record.summary.items() if k == "final" or not (k == "classes" or isinstance(v, dict))}
        report.add("<h2>Summary</h2>", table(("field", "value"), _field_rows(shown), "summary"))
    curves(report, [(record.path.name, record.metrics)] if record.metrics else [], record.model,
           "no metrics.jsonl: no epoch was recorded (a closed-form fit has no curve)")  # fmt: skip
    if record.model == "softmax":
        softmax_section(report, record, data_dir)
    else:
        linreg_section(report, record)
    return report


def comparison_page(records: Sequence[RunRecord]) -> Report:
    """The config fields that differ between runs of one model, their metrics, and their curves overlaid."""
    model = records[0].model
    report = Report(f"{len(records)} {model} runs compared")
    fields = sorted({k for r in records for k in r.config})
    differ = [k for k in fields if len({repr(r.config.get(k)) for r in records}) > 1]
    data_differ = len({r.data for r in records}) > 1
    metrics = SOFTMAX_METRICS if model == "softmax" else LINREG_METRICS
    metrics = tuple((key, label) for key, label in metrics if key not in differ and any(
        _lookup(r.summary, key) is not None for r in records))  # fmt: skip
    header = ["run", "state", *(["data"] if data_differ else []), *differ, *(label for _, label in metrics)]
    rows = [[esc(r.path.name), esc(r.state_text()), *([esc(r.data)] if data_differ else []),
             *(number(r.config.get(k)) for k in differ), *(number(_lookup(r.summary, key)) for key, _ in metrics)]
            for r in records]  # fmt: skip
    same = {k: records[0].config.get(k) for k in fields if k not in differ}
    report.add("<h2>What differs, and the results</h2>", table([esc(h) for h in header], rows, "comparison"))
    report.add('<p class="meta">The same in every run: ' + esc(", ".join(f"{k} {v}" for k, v in same.items()))
               + "</p>")  # fmt: skip
    for r in records:
        for problem in r.problems:
            report.lack(f"{r.path.name}: {problem}")
        if r.summary is None:
            report.lack(f"{r.path.name} is {r.state_text()}: no final metrics, its curve so far")
    curves(report, [(r.path.name, r.metrics) for r in records if r.metrics], model,
           "none of these runs recorded epochs: no curves to overlay")
    return report


def _lookup(summary: dict[str, Any] | None, key: str) -> Any:
    """`a.b` in a summary: summary["a"]["b"], or None."""
    value: Any = summary or {}
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def build_report(records: Sequence[RunRecord], data_dir: str | None = None) -> Report:
    """One run's page, or the comparison of several runs of one model (`cli.common.report_records` checks that)."""
    return single_run_page(records[0], data_dir) if len(records) == 1 else comparison_page(records)
