"""Assemble BENCHMARKS.md from the per-topic result files that the benchmark scripts write.

.venv/bin/python -m bench.collect
"""

from __future__ import annotations

from bench.common import RESULTS
from common.atomic import atomic_write_text

ORDER = ["models", "training", "extraction", "database", "database_real"]
HEADER = """# Benchmarks

Every figure below was printed by the command shown above it and written to
`bench/results/<topic>.md`; `.venv/bin/python -m bench.collect` assembles this file.
Figures are from the development machine (2 CPU cores, no GPU) unless a section says otherwise.
"""


def main() -> None:
    files = sorted(RESULTS.glob("*.md"), key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem))
    text = HEADER + "".join("\n" + path.read_text(encoding="utf-8") for path in files)
    atomic_write_text(RESULTS.parent.parent / "BENCHMARKS.md", text)
    print(f"BENCHMARKS.md: {len(files)} sections ({', '.join(p.stem for p in files)})")


if __name__ == "__main__":
    main()
