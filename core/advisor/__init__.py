"""The advisor: the 8-stage decision pipeline between the detector's signals and Inspector.

`engine/` is the pure core (no I/O, no wall clock); `training`, `calibrating` and `synthetic`
are the offline library (model training, calibration fitting, the default model's data).
"""
