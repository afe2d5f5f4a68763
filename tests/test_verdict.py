"""Is the gap real? Repeats over seeds and the verdict's statistics, against scipy and real short training."""

import time

import pytest
from conftest import server_in
from scipy import stats

from cnn.verdict import difference, mcnemar

TINY = {"train_samples": 768, "epochs": 1, "batch_size": 64, "precision": "fp32"}


def test_mcnemar_agrees_with_a_hand_worked_case_and_scipy():
    # only A right on 1 image, only B right on 9: two-sided exact p = 2 * (C(10,0) + C(10,1)) / 2^10
    right_a = [True] * 50 + [True] + [False] * 9
    right_b = [True] * 50 + [False] + [True] * 9
    assert mcnemar(right_a, right_b) == (1, 9, pytest.approx(22 / 1024))
    assert mcnemar([True, False], [True, False]) == (0, 0, 1.0)  # no discordant image: no evidence at all


def test_welch_difference_agrees_with_scipy():
    a, b = [0.91, 0.93, 0.92], [0.85, 0.88, 0.86, 0.87]
    got = difference(a, b)
    test = stats.ttest_ind(a, b, equal_var=False)
    assert got["p_value"] == pytest.approx(test.pvalue) and got["method"] == "welch_t"
    assert got["ci95"] == pytest.approx(list(test.confidence_interval(0.95)))
    assert difference([0.9], [0.8, 0.7]) is None


@pytest.fixture(scope="module")
def api(data_dir, tmp_path_factory):
    yield from server_in(data_dir, tmp_path_factory.mktemp("verdict"))


def trained(api, models, repeats=3, stop=None):
    answer = api.post("/api/runs", json={"models": models, "repeats": repeats})
    assert answer.status_code == 202, answer.text
    runs = answer.json()["runs"]
    assert len(runs) == repeats * len(models) and len({r["group"] for r in runs}) == 1
    if stop:
        api.post(f"/api/runs/{stop(runs)}/stop")
    for run in runs:
        api.wait(run["id"], timeout=300)
    group = runs[0]["group"]
    for _ in range(600):  # the analyses come after the last run
        answer = api.get(f"/api/groups/{group}/verdict")
        if answer.status_code == 200:
            return runs, answer.json()
        assert answer.status_code == 409, answer.text
        time.sleep(0.5)
    raise AssertionError("no verdict")


def test_identical_configs_differ_only_by_seed_noise(api):
    same = {**TINY, "channels": [8, 8, 8]}  # named in both: B's defaults would otherwise differ from A's
    runs, got = trained(api, [{**same, "seed": 0}, {**same, "seed": 10}])
    assert [(r["slot"], r["seed"]) for r in runs] == [(0, 0), (1, 10), (0, 1), (1, 11), (0, 2), (1, 12)]
    assert got["seeds_used"] == {"a": [0, 1, 2], "b": [10, 11, 12]}
    assert len(got["accuracy"]["a"]["values"]) == 3 and got["difference"]["method"] == "welch_t"
    assert got["config_level_significant"] is False
    assert "no evidence that the configs differ" in got["sentence"] and "3 seeds of A and 3 of B" in got["sentence"]
    for pair in got["mcnemar"]:  # each p-value is scipy's exact binomial test on the counts it reports
        n = pair["only_a"] + pair["only_b"]
        assert pair["p_value"] == pytest.approx(stats.binomtest(pair["only_a"], n, 0.5).pvalue)


def test_a_one_channel_model_is_worse_at_both_levels_and_a_stopped_seed_is_left_out(api):
    weak, classic = {**TINY, "channels": [1]}, {**TINY, "channels": [16, 32, 64]}
    runs, got = trained(api, [weak, classic], stop=lambda runs: runs[4]["id"])  # A's third seed, still queued
    assert got["seeds_used"] == {"a": [0, 1], "b": [0, 1, 2]}
    assert got["config_level_significant"] is True and got["difference"]["mean"] < 0
    assert "config B is better" in got["sentence"] and "2 seeds of A and 3 of B" in got["sentence"]
    assert all(pair["p_value"] < 0.001 and pair["only_b"] > pair["only_a"] for pair in got["mcnemar"])


def test_repeats_are_bounded(api):
    for bad in (0, 11, "3", True):
        answer = api.post("/api/runs", json={"models": [TINY], "repeats": bad})
        assert answer.status_code == 400 and answer.json()["field"] == "repeats"
    assert api.get("/api/groups/abcdefabcdef/verdict").status_code == 404
