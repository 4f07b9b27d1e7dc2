"""Contrastive training: audio cache, pair dataset, NT-Xent loss, trainer (docs/training.md)."""
