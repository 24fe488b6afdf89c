"""Training, BN recalibration, evaluation and architecture search loops."""
