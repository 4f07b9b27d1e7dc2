"""The extraction stage: audio folders -> one ``<song>.npy`` of embeddings per song, plus a manifest.

``songs`` (which files, unique names) -> ``extractor.extract_fingerprints`` (decode, embed with
``models.encoder``, write) -> ``manifest`` (the folder's record; ``load_fingerprint_folder`` reads
it back for the database). Entry: ``generation/generate_fingerprints.py``; see docs/database.md.
"""
