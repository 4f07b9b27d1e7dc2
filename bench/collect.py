"""Assemble BENCHMARKS.md from the per-topic result files that the benchmark scripts write.

.venv/bin/python -m bench.collect
"""

from __future__ import annotations

import re

from bench.common import RESULTS
from common.atomic import atomic_write_text

ORDER = ["models", "training", "extraction", "database", "database_real"]
HEADER = """# Benchmarks

Every figure below was printed by the command shown above it and written to
`bench/results/<topic>.md`; `.venv/bin/python -m bench.collect` assembles this file.
Figures are from the development machine (2 CPU cores, no GPU) unless a section says otherwise.
"""


def rebase_links(markdown: str) -> str:
    """Links relative to ``bench/results/`` (a result file's plots) made relative to the repository root."""
    return re.sub(r"\]\((?!https?:|/|#|bench/)([^)]+)\)", r"](bench/results/\1)", markdown)


def main() -> None:
    files = sorted(RESULTS.glob("*.md"), key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem))
    text = HEADER + "".join("\n" + rebase_links(path.read_text(encoding="utf-8")) for path in files)
    atomic_write_text(RESULTS.parent.parent / "BENCHMARKS.md", text)
    print(f"BENCHMARKS.md: {len(files)} sections ({', '.join(p.stem for p in files)})")


if __name__ == "__main__":
    main()
