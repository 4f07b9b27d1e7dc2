"""The matching stage: query embeddings -> (song, offset, score) against a database, and audio -> match.

``matching.matcher`` (``Matcher``, ``Match``, ``METHODS``, ``choose_threshold``) decides from
embeddings; ``matching.recognizer.Recognizer`` adds the encoder in front, for evaluation and live use.
"""
