"""Entry scripts of the extraction and database stages: ``generate_fingerprints.py``, ``generate_index.py``,
``update_index.py``. The library code they call lives in ``extraction/`` and ``database/`` (docs/database.md)."""
