"""Training side of deblur-sdk: the model zoo, datasets, losses and the trainer (needs the ``train`` extra)."""
