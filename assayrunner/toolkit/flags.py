"""Flag names a result or a condition may carry (the certificate's flag legend explains each)."""

from __future__ import annotations

from ..registry import NOT_COMPUTABLE

BELOW_LLOQ = "below-lloq"  # below the lowest standard: the value is reported as "<" that bound
ABOVE_ULOQ = "above-uloq"  # above the highest standard: the value is reported as ">" that bound
REPLICATE_CV = "replicate-cv"  # the replicates' %CV is above the protocol's flag_cv_percent
INTERFERENCE = "interference"  # the sample's own signal (cell-free, no-blood wells) is too large
NEGATIVE_NET = "negative-net"  # a net signal came out below zero
SATURATED = "saturated"  # a well read above the reader's range
CENSORED = "censored"  # the value is a bound, not a measurement
MIXED_CENSORED = "mixed-censored"  # replicates censored differently (or some numbers): no mean
NOT_REACHED = "not-reached"  # an effect was not reached within the tested range
REASSAY = "re-assay at another dilution"  # a sample outside the standards (or not quantified): dilute and rerun

__all__ = ["ABOVE_ULOQ", "BELOW_LLOQ", "CENSORED", "INTERFERENCE", "MIXED_CENSORED", "NEGATIVE_NET", "NOT_COMPUTABLE",
           "NOT_REACHED", "REASSAY", "REPLICATE_CV", "SATURATED", "well_flags"]


def well_flags(inp, groups, reads) -> list[str]:
    """'<flag> well <well>' for each flagged well of the groups (None skipped) in each read the plate has."""
    reads = [read for read in reads if read in inp.reads]
    if not any(inp.reads[read].flags for read in reads):  # no flagged well at all in these reads
        return []
    return [f"{flag} well {well}" for group in groups if group is not None
            for read in reads for well, flag in inp.flagged(group, read).items()]
