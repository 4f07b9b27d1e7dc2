"""Evaluation (docs/evaluation.md): entry scripts ``evaluate_offline.py``, ``evaluate_recording.py``,
``simulate_recording.py``, ``live_query.py``; library modules for the protocols, queries, metrics and reports."""
