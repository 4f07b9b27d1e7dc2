"""Audio augmentation transforms for contrastive training (SPEC 4.2)."""
