import csv
import json

import matplotlib.image

from evaluation.report import markdown_table, plot_accuracy, report_markdown, write_report


def cells():
    rows = []
    for model in ("model A", "model B"):
        for length in (1.0, 2.0, 5.0):
            for condition, base in (("low_t", 0.9), ("high_t", 0.5)):
                rows.append(
                    {
                        "model": model,
                        "query_seconds": length,
                        "condition": condition,
                        "trials": 2,
                        "accuracy_mean": base * length / 5,
                        "accuracy_std": 0.01,
                        "exact_mean": base * length / 6,
                        "exact_std": 0.0,
                        "per_trial": [{"accuracy": 0.1}],
                    }
                )
    return rows


def test_markdown_table_has_a_row_per_query_length_and_a_column_per_condition():
    table = markdown_table(cells(), "model A", "accuracy", [1.0, 2.0, 5.0], ["low_t", "high_t"], "query (s)")
    lines = table.splitlines()
    assert lines[0] == "| query (s) | low_t | high_t |"
    assert lines[2] == "| 1 | 18.0 ± 1.0 | 10.0 ± 1.0 |"
    assert lines[4] == "| 5 | 90.0 ± 1.0 | 50.0 ± 1.0 |"
    assert markdown_table(cells(), "model A", "accuracy", [3.0], ["low_t"], "q").splitlines()[2] == "| 3 | n/a |"


def test_report_folder_holds_config_table_csv_json_and_a_non_empty_plot(tmp_path):
    rows = cells()
    lengths, conditions, models = [1.0, 2.0, 5.0], ["low_t", "high_t"], ["model A", "model B"]
    markdown = report_markdown(
        "Test", rows, models, lengths, conditions, "query (s)", ["accuracy", "exact"], ["a note"]
    )
    paths = write_report(
        tmp_path / "report",
        {"seed": 3, "nan": float("nan")},
        markdown,
        rows,
        {"protocol": "test"},
        lambda path: plot_accuracy(path, rows, models, lengths, conditions, title="Test"),
    )
    assert json.loads(paths["config"].read_text()) == {"seed": 3, "nan": None}
    assert "## model B: song top-1 accuracy (%)" in paths["markdown"].read_text()
    with open(paths["csv"]) as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 12 and "per_trial" not in table[0] and table[0]["accuracy_mean"]
    assert len(json.loads(paths["json"].read_text())["cells"]) == 12
    image = matplotlib.image.imread(paths["plot"])
    assert image.shape[0] > 100 and image.shape[1] > 400  # two panels side by side
    assert image.std() > 0.01  # something was drawn
    assert not list((tmp_path / "report").glob(".*tmp*"))
