"""The shared assay toolkit: the pieces every assay plugin computes the same way, one module per idea.

flags (flag names, per-well flags), groups (required layout groups, controls, reads), levels (replicate
and back-calculation statistics, censored replicates), standards (blank correction, a standard curve:
fit, back-calculation, range flags, censored values), records (the typed fit record the certificate
plots). Import them from `assayrunner` (the plugin API), not from here.
"""
