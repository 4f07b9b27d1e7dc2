"""Live recognition: a microphone or a recording, recognised every few seconds (docs/live.md).

``ring_buffer`` (samples between threads) <- ``sources`` / ``microphone`` (audio in) ->
``session`` (recognise each window with ``matching.recognizer.Recognizer``, report) with
``stability`` (when agreeing windows make a stable match). Entry: ``evaluation/live_query.py``.
"""
