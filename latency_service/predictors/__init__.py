"""Latency predictors for ops nobody measured: features, training, and their storage
(no pickles: a predictor is stored as its recipe and rebuilt by deterministic retraining)."""
