"""Is the gap real? The evidence for a pair trained over several seeds, as numbers and one sentence.

Two questions, said apart. "Is trained model A better than trained model B on this test set?" is answered
per seed pair by McNemar's exact test on the paired predictions (the images only A got right against the
images only B got right). "Is config A better than config B?" needs several seeds each, because the seed
alone moves the accuracy: Welch's t over the seeds' test accuracies. scipy does the distributions.
"""

import math

from scipy import stats

ALPHA = 0.05


def mcnemar(correct_a, correct_b):
    """Paired per-image correctness (lists of bools) -> (only_a, only_b, exact two-sided p-value)."""
    only_a = sum(1 for a, b in zip(correct_a, correct_b, strict=True) if a and not b)
    only_b = sum(1 for a, b in zip(correct_a, correct_b, strict=True) if b and not a)
    n = only_a + only_b
    p = 1.0 if n == 0 else stats.binomtest(only_a, n, 0.5).pvalue
    return only_a, only_b, min(1.0, p)


def summary(values):
    """-> {"mean", "ci95": [low, high] (Student's t over the values; null with one), "values"}."""
    mean = sum(values) / len(values) if values else None
    ci = None
    if len(values) >= 2:
        spread = stats.tstd(values)
        if spread == 0:
            ci = [mean, mean]
        else:
            low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=spread / math.sqrt(len(values)))
            ci = [low, high]
    return {"mean": mean, "ci95": ci, "values": list(values)}


def difference(a, b):
    """A's values minus B's: Welch's t (unequal variances) -> {"mean", "ci95", "p_value", "method"}; None with
    fewer than 2 values each."""
    if len(a) < 2 or len(b) < 2:
        return None
    mean = sum(a) / len(a) - sum(b) / len(b)
    if stats.tstd(a) == 0 and stats.tstd(b) == 0:  # no spread at all: the t statistic is undefined
        return {"mean": mean, "ci95": [mean, mean], "p_value": 1.0 if mean == 0 else 0.0, "method": "welch_t"}
    test = stats.ttest_ind(a, b, equal_var=False)
    low, high = test.confidence_interval(0.95)
    return {"mean": mean, "ci95": [low, high], "p_value": float(test.pvalue), "method": "welch_t"}


def points(x):
    return f"{100 * x:.1f}"


def p_text(p):
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}" if p < 0.01 else f"p = {p:.2f}"


def sentence(seeds_used, accuracy, diff, pairs):
    n_a, n_b = len(seeds_used["a"]), len(seeds_used["b"])
    if not n_a or not n_b:
        return "No seed of one model ended with an analysis, so nothing can be compared."
    used = f"Over {n_a} seed{'s' * (n_a != 1)} of A and {n_b} of B"
    if diff is None:
        first = pairs[0] if pairs else None
        if first is None:
            return f"{used}: no paired test-set predictions to compare."
        better = "A" if first["only_a"] > first["only_b"] else "B"
        head = (
            f"One seed each answers only whether these trained models differ on this test set: A gets "
            f"{first['only_a']} images right that B misses and B gets {first['only_b']} that A misses: "
            f"{p_text(first['p_value'])}"
        )
        if first["p_value"] < ALPHA:
            more = "Train with repeats to ask about the configs."
            return f"{head}, so trained model {better} is better on this test set. {more}"
        return f"{head}, no evidence that either is better on this test set."
    a, b = accuracy["a"]["mean"], accuracy["b"]["mean"]
    low, high = diff["ci95"]
    gap = (
        f"{used}, A's mean test accuracy is {points(a)}% and B's {points(b)}%; the difference, "
        f"{points(diff['mean'])} points, has a 95% interval of {points(low)} to {points(high)} "
        f"(Welch's t, {p_text(diff['p_value'])})"
    )
    if diff["p_value"] < ALPHA:
        return (
            f"{gap}: the gap is larger than seed-to-seed noise, so config {'A' if diff['mean'] > 0 else 'B'} is better."
        )
    return f"{gap}: no evidence that the configs differ; the gap is within seed-to-seed noise."


def verdict(runs, analyses, labels):
    """runs: the group's ended runs (slot, seed, status); analyses: run id -> analysis (with per-image
    predictions); labels: the test labels. Failed or stopped runs, and runs without an analysis, are left out."""
    used = {
        slot: [r for r in runs if r["slot"] == i and r["status"] == "finished" and r["id"] in analyses]
        for i, slot in enumerate("ab")
    }
    used = {slot: sorted(rs, key=lambda r: r["seed"]) for slot, rs in used.items()}
    accuracy = {slot: summary([analyses[r["id"]]["accuracy"] for r in rs]) for slot, rs in used.items()}
    seconds = {slot: summary([analyses[r["id"]].get("train_seconds") or 0.0 for r in rs]) for slot, rs in used.items()}
    pairs = []
    for run_a, run_b in zip(used["a"], used["b"], strict=False):  # the i-th seed of A with the i-th of B
        right_a = [p == y for p, y in zip(analyses[run_a["id"]]["predictions"], labels, strict=True)]
        right_b = [p == y for p, y in zip(analyses[run_b["id"]]["predictions"], labels, strict=True)]
        only_a, only_b, p = mcnemar(right_a, right_b)
        pairs.append(
            {"seed_a": run_a["seed"], "seed_b": run_b["seed"], "only_a": only_a, "only_b": only_b, "p_value": p}
        )
    diff = difference(accuracy["a"]["values"], accuracy["b"]["values"])
    seeds_used = {slot: [r["seed"] for r in rs] for slot, rs in used.items()}
    return {
        "seeds_used": seeds_used,
        "accuracy": accuracy,
        "difference": diff,
        "mcnemar": pairs,
        "config_level_significant": None if diff is None else diff["p_value"] < ALPHA,
        "train_seconds": {**seconds, "difference": difference(seconds["a"]["values"], seconds["b"]["values"])},
        "sentence": sentence(seeds_used, accuracy, diff, pairs),
    }
