"""The matching stage: query embeddings -> (song, offset, score) against a database, and audio -> match.

``matching.matcher`` (``Matcher``, ``Match``, ``METHODS``) decides from embeddings, with "no
match" decided by ``matching.decision`` (calibrated rules, ``choose_threshold``);
``matching.recognizer.Recognizer`` adds the encoder in front, for evaluation and live use.
"""
