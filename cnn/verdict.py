"""Is the gap real? The evidence for a pair trained over several seeds, as numbers and one sentence.

Two questions, said apart. "Is trained model A better than trained model B on this test set?" is answered
per seed pair by McNemar's exact test on the paired predictions (the images only A got right against the
images only B got right). "Is config A better than config B?" needs several seeds each, because the seed
alone moves the accuracy: Welch's t over the seeds' test accuracies. scipy does the distributions.
"""

import math

from scipy import stats

ALPHA = 0.05
ACCURACY = (0.0, 1.0)  # what an accuracy can be
SECONDS = (0.0, math.inf)


def mcnemar(correct_a, correct_b):
    """Paired per-image correctness (lists of bools) -> (only_a, only_b, exact two-sided p-value)."""
    only_a = sum(1 for a, b in zip(correct_a, correct_b, strict=True) if a and not b)
    only_b = sum(1 for a, b in zip(correct_a, correct_b, strict=True) if b and not a)
    n = only_a + only_b
    p = 1.0 if n == 0 else stats.binomtest(only_a, n, 0.5).pvalue
    return only_a, only_b, min(1.0, p)


def summary(values, bounds=ACCURACY):
    """-> {"mean", "ci95": [low, high] (Student's t over the values; null with one), "values"}."""
    mean = sum(values) / len(values) if values else None
    ci = None
    if len(values) >= 2:
        if len(set(values)) == 1:  # every seed the same: scipy would warn of a spread lost to rounding
            ci = [mean, mean]
        else:
            scale = stats.tstd(values) / math.sqrt(len(values))
            low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=scale)
            # Student's t knows nothing of bounds: with few seeds far apart an accuracy's interval would pass
            # 100%, so it is clipped to what the quantity can be (and is then no longer symmetric)
            ci = [max(bounds[0], float(low)), min(bounds[1], float(high))]
    return {"mean": mean, "ci95": ci, "values": list(values)}


def difference(a, b):
    """A's values minus B's: Welch's t (unequal variances) -> {"mean", "ci95", "p_value", "method"}; None with
    fewer than 2 values each. When every value of A is the same and so is every value of B, the t statistic
    is undefined: equal values give p = 1 (nothing tells them apart); unequal ones give p_value and ci95 null,
    since the seeds showed no spread to judge the gap against (scipy would say p = 0 from that)."""
    if len(a) < 2 or len(b) < 2:
        return None
    mean = sum(a) / len(a) - sum(b) / len(b)
    if len(set(a)) == 1 and len(set(b)) == 1:
        if a[0] == b[0]:
            return {"mean": 0.0, "ci95": [0.0, 0.0], "p_value": 1.0, "method": "welch_t"}
        return {"mean": mean, "ci95": None, "p_value": None, "method": "welch_t"}
    test = stats.ttest_ind(a, b, equal_var=False)
    low, high = test.confidence_interval(0.95)
    return {"mean": mean, "ci95": [float(low), float(high)], "p_value": float(test.pvalue), "method": "welch_t"}


def points(x):
    return f"{100 * x:.1f}"


def p_text(p):
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}" if p < 0.01 else f"p = {p:.2f}"


def duration(s):
    return f"{s:.1f} s" if s < 60 else f"{int(s // 60)} min {round(s % 60)} s"


def images(n):
    return f"{n} image{'s' * (n != 1)}"


def pair_sentence(only_a, only_b, p):
    """McNemar's answer for one trained pair on the test set, in words."""
    head = f"A gets {images(only_a)} right that B misses and B gets {only_b} that A misses: {p_text(p)}"
    if p < ALPHA:
        return f"{head}, so trained model {'A' if only_a > only_b else 'B'} is better on this test set."
    return f"{head}, no evidence that either is better on this test set."


def sentence(seeds_used, accuracy, diff, pairs):
    n_a, n_b = len(seeds_used["a"]), len(seeds_used["b"])
    if not n_a or not n_b:
        return "No seed of one model ended with an analysis, so nothing can be compared."
    used = f"Over {n_a} seed{'s' * (n_a != 1)} of A and {n_b} of B"
    if diff is None:
        first = pairs[0] if pairs else None
        if first is None:
            return f"{used}: no paired test-set predictions to compare."
        said = pair_sentence(first["only_a"], first["only_b"], first["p_value"])
        if n_a == n_b == 1:
            more = " Train with repeats to ask about the configs." if first["p_value"] < ALPHA else ""
            return f"One seed each answers only whether these trained models differ on this test set: {said}{more}"
        return (
            f"{used}: too few seeds to ask whether the configs differ (that takes at least 2 of each). "
            f"Trained models A seed {first['seed_a']} and B seed {first['seed_b']} on this test set: {said}"
        )
    a, b = accuracy["a"]["mean"], accuracy["b"]["mean"]
    means = f"{used}, A's mean test accuracy is {points(a)}% and B's {points(b)}%"
    if diff["p_value"] is None:
        return (
            f"{means}, but every seed of each model scored the same: the seeds showed no spread to judge the gap "
            "against, so there is no test of whether the configs differ."
        )
    low, high = diff["ci95"]
    gap = (
        f"{means}; the difference, {points(diff['mean'])} points, has a 95% interval of {points(low)} to "
        f"{points(high)} (Welch's t, {p_text(diff['p_value'])})"
    )
    if diff["p_value"] < ALPHA:
        return (
            f"{gap}: the gap is larger than seed-to-seed noise, so config {'A' if diff['mean'] > 0 else 'B'} is better."
        )
    return f"{gap}: no evidence that the configs differ; the gap is within seed-to-seed noise."


def time_sentence(seconds):
    """Which model trains faster per seed, and whether that is beyond seed-to-seed noise."""
    a, b, diff = seconds["a"]["mean"], seconds["b"]["mean"], seconds["difference"]
    if a is None or b is None:
        return ""
    if a == b:
        return f"A and B take the same training time: {duration(a)} per seed."
    fast, slow, name = (a, b, "A") if a < b else (b, a, "B")
    each = f"{duration(fast)} against {duration(slow)} per seed"
    if diff is None:
        return f"{name} trained faster: {each}; too few seeds to say whether that is beyond seed-to-seed noise."
    if diff["p_value"] is None:
        return f"{name} trains faster: {each}, the same time for every seed of each model, so no test."
    if diff["p_value"] < ALPHA:
        return f"{name} trains faster: {each}, {p_text(diff['p_value'])} (Welch's t), beyond seed-to-seed noise."
    return f"{name} trains faster on average: {each}, {p_text(diff['p_value'])} (Welch's t), within seed-to-seed noise."


def verdict(runs, analyses, labels):
    """runs: the group's ended runs (slot, repeat, seed, status); analyses: run id -> analysis (with per-image
    predictions); labels: the test labels. Failed or stopped runs, and runs without an analysis, are left out."""
    used = {
        slot: [r for r in runs if r["slot"] == i and r["status"] == "finished" and r["id"] in analyses]
        for i, slot in enumerate("ab")
    }
    used = {slot: sorted(rs, key=lambda r: r["repeat"]) for slot, rs in used.items()}
    accuracy = {slot: summary([analyses[r["id"]]["accuracy"] for r in rs]) for slot, rs in used.items()}
    # a seed whose analysis has no training time (its run never said it) is left out of the times, as the
    # seeds table leaves it out of its means: counted as 0 s it would make its model look the fastest
    timed = {slot: [analyses[r["id"]].get("train_seconds") for r in rs] for slot, rs in used.items()}
    seconds = {slot: summary([s for s in times if s is not None], SECONDS) for slot, times in timed.items()}
    pairs = []
    b_by_repeat = {r["repeat"]: r for r in used["b"]}
    for run_a in used["a"]:  # the k-th seed of A with the k-th of B; a pair missing either is left out
        run_b = b_by_repeat.get(run_a["repeat"])
        if run_b is None:
            continue
        right_a = [p == y for p, y in zip(analyses[run_a["id"]]["predictions"], labels, strict=True)]
        right_b = [p == y for p, y in zip(analyses[run_b["id"]]["predictions"], labels, strict=True)]
        only_a, only_b, p = mcnemar(right_a, right_b)
        pairs.append(
            {"seed_a": run_a["seed"], "seed_b": run_b["seed"], "only_a": only_a, "only_b": only_b, "p_value": p}
        )
    diff = difference(accuracy["a"]["values"], accuracy["b"]["values"])
    seeds_used = {slot: [r["seed"] for r in rs] for slot, rs in used.items()}
    seconds["difference"] = difference(seconds["a"]["values"], seconds["b"]["values"])
    seconds["sentence"] = time_sentence(seconds)
    return {
        "seeds_used": seeds_used,
        "accuracy": accuracy,
        "difference": diff,
        "mcnemar": pairs,
        "config_level_significant": None if diff is None or diff["p_value"] is None else diff["p_value"] < ALPHA,
        "train_seconds": seconds,
        "sentence": sentence(seeds_used, accuracy, diff, pairs),
    }
