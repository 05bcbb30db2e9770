"""Scheduled nightly runs: each night a suite run of its own, compared with the previous nights
(paired on per-example predictions where they exist, by z-score where not), reported."""
