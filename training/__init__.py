"""Contrastive training: audio cache, pair dataset, NT-Xent loss, trainer (SPEC 4)."""
