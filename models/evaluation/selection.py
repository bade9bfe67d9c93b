"""Model selection on validation folds of the training beats only (``ecgmon evaluate --select``).

The protocol, fixed before any test beat is scored:

1. The normal training beats are dealt into ``CALIBRATION_FOLDS`` seeded folds, and the
   abnormal training beats into as many folds of their own. For each candidate architecture,
   fold f's model trains on the normal beats of the other folds (the cross-fitting a detector
   is calibrated with) and scores fold f's normal and abnormal beats, which it never saw.
2. For each candidate threshold rule and each fold f, the threshold is the rule applied to the
   out-of-fold normal losses of the *other* folds; fold f's beats are flagged against it and
   give an anomaly F1 and a false-alarm rate.
3. The chosen (architecture, rule, parameter) has the highest mean validation F1 over the folds;
   a tie goes to the earlier candidate in the lists below (simpler rules, cheaper models first).
4. Only then is the final model trained on all normal training beats (its calibration is the
   chosen architecture's out-of-fold losses of step 1) and the test beats are scored once.

The *default* rule must serve every dataset, so it is chosen across datasets
(:func:`choose_default_rule`, ``benchmarks/default_rule.py``): steps 1-2 on each dataset's
training beats over several seeds; a rule is admissible when its mean validation false-alarm
rate stays within :data:`FALSE_ALARM_BUDGET` on every dataset, and the admissible rule with the
highest worst-dataset mean validation F1 is the default (a tie goes to the earlier candidate).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from ecgmon.models.autoencoder.calibration import CALIBRATION_FOLDS, CrossFit, cross_fitted_losses
from ecgmon.models.autoencoder.detector import AutoencoderDetector
from ecgmon.models.evaluation.metrics import detection_metrics
from ecgmon.models.thresholds import compute_threshold

log = logging.getLogger(__name__)

#: Candidates, in tie-break order; fixed before the selection was first run.
CANDIDATE_ARCHITECTURES: tuple[str, ...] = ("dense", "dense_ensemble", "conv_denoising", "vae")
CANDIDATE_RULES: tuple[tuple[str, float], ...] = (
    *(("mean_std", k) for k in (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)),
    *(("quantile", q) for q in (0.95, 0.975, 0.99)),
)
#: Largest mean validation false-alarm rate a default rule may have on any dataset.
FALSE_ALARM_BUDGET = 0.05


@dataclass(frozen=True)
class Candidate:
    """Validation figures of one (architecture, rule, parameter) over the folds."""

    architecture: str
    method: str
    param: float
    mean_f1: float
    worst_f1: float
    mean_false_alarm_rate: float
    auroc: float


@dataclass(frozen=True)
class Selection:
    """Every candidate's validation figures, the chosen one, and each architecture's cross-fit."""

    candidates: list[Candidate]
    chosen: Candidate
    crossfits: dict[str, CrossFit]

    def to_json(self) -> dict:
        """The protocol's record, JSON-ready (the cross-fit losses are left out)."""
        return {
            "protocol": "validation folds of the training beats only (evaluation/selection.py)",
            "folds": next(iter(self.crossfits.values())).n_folds,
            "chosen": asdict(self.chosen),
            "candidates": [asdict(c) for c in self.candidates],
        }


def rule_figures(crossfit: CrossFit, architecture: str, method: str, param: float) -> Candidate:
    """Step 2 of the protocol for one rule, from a cross-fit with abnormal ``extra`` beats."""
    f1s, fars = [], []
    for fold in range(crossfit.n_folds):
        calibration = crossfit.losses[crossfit.folds != fold]
        threshold = compute_threshold(calibration, method, param).value
        normal = crossfit.losses[crossfit.folds == fold]
        abnormal = crossfit.extra_losses[crossfit.extra_folds == fold]
        truth = np.concatenate([np.zeros(normal.size, bool), np.ones(abnormal.size, bool)])
        metrics = detection_metrics(np.concatenate([normal, abnormal]), truth, threshold)
        f1s.append(metrics["f1"])
        fars.append(metrics["false_alarm_rate"])
    pooled = np.concatenate([crossfit.losses, crossfit.extra_losses])
    truth = np.concatenate(
        [np.zeros(crossfit.losses.size, bool), np.ones(crossfit.extra_losses.size, bool)]
    )
    auroc = detection_metrics(pooled, truth, 0.0)["auroc"]
    return Candidate(
        architecture,
        method,
        float(param),
        float(np.mean(f1s)),
        float(np.min(f1s)),
        float(np.mean(fars)),
        auroc,
    )


def select(
    normal: np.ndarray,
    abnormal: np.ndarray,
    *,
    epochs: int,
    seed: int,
    architectures: tuple[str, ...] | None = None,
    rules: tuple[tuple[str, float], ...] | None = None,
    folds: int = CALIBRATION_FOLDS,
) -> Selection:
    """Steps 1-3 on training beats: normal (n, length) and labelled abnormal (m, length).

    ``architectures`` and ``rules`` default to the module's candidate lists."""
    architectures = architectures or CANDIDATE_ARCHITECTURES
    rules = rules or CANDIDATE_RULES
    if len(abnormal) < folds:
        raise ValueError(
            f"selection needs at least {folds} abnormal training beats, got {len(abnormal)}"
        )
    from ecgmon.models.autoencoder.architectures import default_hyperparameters

    candidates, crossfits = [], {}
    for name in architectures:
        hp = default_hyperparameters(name)
        crossfits[name] = cross_fitted_losses(
            normal,
            lambda x, s, name=name, hp=hp: AutoencoderDetector.train(x, name, hp, epochs, s),
            folds=folds,
            seed=seed,
            extra=abnormal,
        )
        for method, param in rules:
            candidates.append(rule_figures(crossfits[name], name, method, param))
            log.info("selection: %s", candidates[-1])
    chosen = max(candidates, key=lambda c: c.mean_f1)  # max keeps the first of equals
    return Selection(candidates, chosen, crossfits)


@dataclass(frozen=True)
class RuleAcross:
    """One rule's validation figures per dataset, each over seeds (means of per-seed means)."""

    method: str
    param: float
    mean_f1: dict[str, float]
    worst_seed_f1: dict[str, float]
    false_alarm_rate: dict[str, float]
    admissible: bool


def choose_default_rule(
    tables: dict[str, list[list[Candidate]]], budget: float = FALSE_ALARM_BUDGET
) -> tuple[RuleAcross, list[RuleAcross]]:
    """(chosen, every rule) from ``tables[dataset][seed]``: one architecture's candidate list.

    Admissible: mean validation false-alarm rate <= ``budget`` on every dataset. Chosen: the
    admissible rule with the highest worst-dataset mean validation F1; a tie goes to the earlier
    rule. ValueError when no rule is admissible or the seeds disagree on the candidate list.
    """
    if not tables or not all(tables.values()):
        raise ValueError("choose_default_rule needs at least one seed of every dataset")
    rules = [(c.method, c.param) for c in next(iter(tables.values()))[0]]
    for seeds in tables.values():
        if any([(c.method, c.param) for c in run] != rules for run in seeds):
            raise ValueError("every dataset and seed must list the same rules in the same order")
    rows = []
    for i, (method, param) in enumerate(rules):
        f1 = {d: np.array([run[i].mean_f1 for run in seeds]) for d, seeds in tables.items()}
        far = {
            d: float(np.mean([run[i].mean_false_alarm_rate for run in s]))
            for d, s in tables.items()
        }
        rows.append(
            RuleAcross(
                method,
                param,
                {d: float(v.mean()) for d, v in f1.items()},
                {d: float(v.min()) for d, v in f1.items()},
                far,
                all(v <= budget for v in far.values()),
            )
        )
    admissible = [r for r in rows if r.admissible]
    if not admissible:
        raise ValueError(f"no rule keeps the validation false-alarm rate within {budget}")
    return max(admissible, key=lambda r: min(r.mean_f1.values())), rows
