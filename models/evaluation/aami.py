"""AAMI EC57 beat classes and the VEB/SVEB statistics detectors are judged by.

ANSI/AAMI EC57 groups the MIT-BIH beat symbols into five classes: N (normal and bundle branch
block beats, escape beats), S (supraventricular ectopic), V (ventricular ectopic), F (fusion) and
Q (paced, unclassifiable). A detector is judged per ectopic class by sensitivity (Se) and positive
predictivity (+P), gross over records (counts summed, then divided), with the paced records
(102, 104, 107, 217) left out. As in de Chazal et al. (2004) and EC57: a fusion or unclassifiable
beat called V is not a VEB false positive; a Q beat called S is not an SVEB false positive. Here
an annotated beat the R-peak detector missed counts as missed (FN) for its class, and a detection
matching no annotated beat (``O``) called ectopic counts as a false positive.
"""

from __future__ import annotations

import numpy as np

AAMI_CLASS = {
    **dict.fromkeys("NLRBejn", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VEr", "V"),
    "F": "F",
    **dict.fromkeys("/fQ?", "Q"),
}
"""MIT-BIH beat symbol -> AAMI class (N, S, V, F, Q)."""
PACED_RECORDS = frozenset({"102", "104", "107", "217"})
"""MIT-BIH records with paced beats, excluded from AAMI statistics."""
UNMATCHED = "O"
"""Reference class of a detection that matches no annotated beat."""
_NOT_FALSE_POSITIVE = {"V": {"V", "F", "Q"}, "S": {"S", "Q"}}


def aami_classes(symbols: np.ndarray) -> np.ndarray:
    """AAMI class (N/S/V/F/Q) per beat symbol (n,); ``UNMATCHED`` for "" (no annotation)."""
    return np.asarray([AAMI_CLASS.get(str(s), UNMATCHED) if s else UNMATCHED for s in symbols])


def is_paced(record: str) -> bool:
    """True for the MIT-BIH records with paced beats."""
    return record in PACED_RECORDS


def ectopic_counts(reference: np.ndarray, predicted: np.ndarray, n_missed: dict) -> dict:
    """TP/FN/FP of VEB and SVEB.

    ``reference`` (n,) AAMI class of each detected beat (``UNMATCHED`` when none), ``predicted``
    (n,) "N", "V" or "S" per detected beat; ``n_missed`` {class: annotated beats not detected}.
    """
    counts = {}
    for key, cls in (("veb", "V"), ("sveb", "S")):
        tp = int(((reference == cls) & (predicted == cls)).sum())
        fn = int(((reference == cls) & (predicted != cls)).sum()) + int(n_missed.get(cls, 0))
        fp = int(((predicted == cls) & ~np.isin(reference, list(_NOT_FALSE_POSITIVE[cls]))).sum())
        counts[key] = {"tp": tp, "fn": fn, "fp": fp}
    return counts


def with_rates(counts: dict) -> dict:
    """``counts`` ({veb|sveb: {tp, fn, fp}}) with ``se`` and ``ppv`` added (None when undefined)."""
    out = {}
    for key, c in counts.items():
        se = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else None
        ppv = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else None
        out[key] = c | {"se": se, "ppv": ppv}
    return out


def gross(per_record: dict[str, dict]) -> dict:
    """Gross statistics: the records' {veb|sveb: {tp, fn, fp}} summed, then Se and +P."""
    total = {key: {"tp": 0, "fn": 0, "fp": 0} for key in ("veb", "sveb")}
    for counts in per_record.values():
        for key in total:
            for field in ("tp", "fn", "fp"):
                total[key][field] += counts[key][field]
    return with_rates(total)
