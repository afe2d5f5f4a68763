"""Is the gap real? Repeats over seeds and the verdict's statistics, against scipy and real short training."""

import time

import pytest
from conftest import server_in
from scipy import stats
from test_images import write_folder

from cnn.verdict import SECONDS, difference, mcnemar, p_text, summary, verdict

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:torchvision")  # the folder's PNGs
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


LABELS = [0] * 20  # every test image is a 0: a run that gets k right predicts 0 on the first k


def seed(slot, repeat, seed, right, status="finished", seconds=1.0):
    """A run of the group and its analysis: right of the 20 test images, trained for `seconds`."""
    run = {"id": f"{'ab'[slot]}{repeat}", "slot": slot, "repeat": repeat, "seed": seed, "status": status}
    predictions = [0] * right + [1] * (20 - right)
    return run, {"accuracy": right / 20, "predictions": predictions, "train_seconds": seconds}


def group_verdict(*seeds):
    return verdict([run for run, _ in seeds], {run["id"]: a for run, a in seeds}, LABELS)


def test_mcnemar_pairs_the_kth_seed_of_a_with_the_kth_of_b_leaving_out_a_pair_missing_one():
    # B's second seed was stopped mid-way: it has an analysis, but is left out, and so is A's second seed's pair
    got = group_verdict(
        seed(0, 0, 0, 15), seed(0, 1, 1, 16), seed(0, 2, 2, 17),
        seed(1, 0, 10, 12), seed(1, 1, 11, 19, status="stopped"), seed(1, 2, 12, 10),
    )  # fmt: skip
    assert got["seeds_used"] == {"a": [0, 1, 2], "b": [10, 12]}
    assert [(p["seed_a"], p["seed_b"], p["only_a"], p["only_b"]) for p in got["mcnemar"]] == [
        (0, 10, 3, 0),
        (2, 12, 7, 0),
    ]
    for pair in got["mcnemar"]:
        n = pair["only_a"] + pair["only_b"]
        assert pair["p_value"] == pytest.approx(stats.binomtest(pair["only_a"], n, 0.5).pvalue)


def test_an_accuracy_interval_stays_within_0_and_1():
    values = [0.70, 0.99]  # two seeds far apart: Student's t with one degree of freedom reaches past 100%
    low, high = stats.t.interval(0.95, 1, loc=0.845, scale=stats.tstd(values) / 2**0.5)
    assert low < 0 and high > 1
    assert summary(values)["ci95"] == [0.0, 1.0]
    assert summary([1.0, 9.0], SECONDS)["ci95"][0] == 0.0  # a time is never negative either, but has no top
    assert summary([0.91, 0.93, 0.92])["ci95"] == pytest.approx(
        list(stats.t.interval(0.95, 2, loc=0.92, scale=stats.sem([0.91, 0.93, 0.92])))
    )


def test_seeds_without_spread_give_no_test_rather_than_p_0():
    got = difference([0.9, 0.9, 0.9], [0.8, 0.8])
    assert got["p_value"] is None and got["ci95"] is None and got["mean"] == pytest.approx(0.1)
    assert difference([0.9, 0.9], [0.9, 0.9, 0.9]) == {
        "mean": 0.0,
        "ci95": [0.0, 0.0],
        "p_value": 1.0,
        "method": "welch_t",
    }
    same = group_verdict(seed(0, 0, 0, 18), seed(0, 1, 1, 18), seed(1, 0, 0, 16), seed(1, 1, 1, 16))
    assert same["config_level_significant"] is None
    assert "the seeds showed no spread to judge the gap against" in same["sentence"]
    assert "better" not in same["sentence"]


def test_the_training_time_says_which_model_is_faster_and_whether_beyond_noise():
    a, b = [1.5, 1.6, 1.7], [5.0, 4.9, 5.1]
    got = group_verdict(
        *(seed(0, k, k, 15, seconds=s) for k, s in enumerate(a)),
        *(seed(1, k, k, 15, seconds=s) for k, s in enumerate(b)),
    )
    p = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert got["train_seconds"]["difference"]["p_value"] == pytest.approx(p)
    assert got["train_seconds"]["sentence"] == (
        f"A trains faster: 1.6 s against 5.0 s per seed, {p_text(p)} (Welch's t), beyond seed-to-seed noise."
    )
    slow = group_verdict(seed(0, 0, 0, 15, seconds=5.0), seed(1, 0, 0, 15, seconds=2.0))
    assert slow["train_seconds"]["sentence"].startswith("B trained faster: 2.0 s against 5.0 s per seed; too few seeds")


def test_a_seed_without_its_training_time_is_left_out_of_the_times_only():
    """As the seeds table leaves it out of its mean: counted as 0 s, A would look the faster."""
    got = group_verdict(
        seed(0, 0, 0, 15, seconds=None), seed(0, 1, 1, 16, seconds=3.0),
        seed(1, 0, 0, 14, seconds=2.0), seed(1, 1, 1, 15, seconds=2.2),
    )  # fmt: skip
    assert got["seeds_used"] == {"a": [0, 1], "b": [0, 1]}  # its accuracy still counts
    assert got["accuracy"]["a"]["values"] == [0.75, 0.8]
    assert got["train_seconds"]["a"]["values"] == [3.0] and got["train_seconds"]["difference"] is None
    assert got["train_seconds"]["sentence"].startswith("B trained faster: 2.1 s against 3.0 s per seed")


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


def test_a_seed_stopped_after_its_first_epoch_is_left_out_and_the_verdict_counts_the_seeds(api):
    slow = {**TINY, "train_samples": 512, "epochs": 30, "channels": [4]}  # still training after its first epoch
    answer = api.post("/api/runs", json={"models": [slow, {**TINY, "channels": [4]}], "repeats": 2})
    assert answer.status_code == 202, answer.text
    runs = answer.json()["runs"]
    first = runs[0]["id"]  # A's first seed
    deadline = time.time() + 120
    while not api.get(f"/api/runs/{first}").json()["metrics"]["epoch"]:
        assert time.time() < deadline, "A's first seed never ended an epoch"
        time.sleep(0.1)
    api.post(f"/api/runs/{first}/stop")
    for run in runs:
        api.wait(run["id"], timeout=300)
    stopped = api.get(f"/api/runs/{first}").json()
    assert stopped["status"] == "stopped"
    while (stopped := api.get(f"/api/runs/{first}").json())["analysis"] == "pending":  # it had weights: analysed
        time.sleep(0.5)
    assert stopped["analysis"] == "ready"
    group = runs[0]["group"]
    for _ in range(600):
        answer = api.get(f"/api/groups/{group}/verdict")
        if answer.status_code != 409:
            break
        time.sleep(0.5)
    got = answer.json()
    assert got["seeds_used"] == {"a": [1], "b": [0, 1]} and got["difference"] is None
    assert [(p["seed_a"], p["seed_b"]) for p in got["mcnemar"]] == [(1, 1)]  # A's second seed with B's second
    assert got["sentence"].startswith("Over 1 seed of A and 2 of B: too few seeds to ask whether the configs differ")


FOLDER_RUN = {"dataset": "folder:shades", "channels": [4], "epochs": 1, "batch_size": 8, "image_size": 40}


@pytest.fixture(scope="module")
def folder_api(tmp_path_factory):
    """A server on a data folder of its own, an image folder in it, and a cache folder to look into."""
    root = tmp_path_factory.mktemp("verdict-folder")
    write_folder(root / "data", "shades", channels=3)
    yield from server_in(root / "data", root, ["--cache-dir", str(root / "cache")])


@pytest.fixture(scope="module")
def folder_group(folder_api):
    """The runs and verdict of a pair trained once each on folder:shades at 40x40."""
    return trained(folder_api, [FOLDER_RUN, {**FOLDER_RUN, "channels": [8]}], repeats=1)


def test_the_verdict_of_a_folder_dataset_reads_its_labels_without_decoding_it_again(folder_api, folder_group):
    runs, got = folder_group
    assert got["seeds_used"] == {"a": [0], "b": [0]} and len(got["mcnemar"]) == 1  # the labels agree
    decoded = sorted(p.name.rsplit("-", 1)[0] for p in (folder_api.runs_dir.parent / "cache").glob("*.pt"))
    assert decoded == ["folder-shades-40-test", "folder-shades-40-train"]  # none at the default 32x32


def test_a_seed_whose_analysis_file_is_gone_is_left_out_and_said_so(folder_api, folder_group):
    runs, _ = folder_group
    a, group = runs[0]["id"], runs[0]["group"]
    (folder_api.runs_dir / a / "analysis.json").unlink()
    seeds = folder_api.get(f"/api/groups/{group}/seeds")
    assert seeds.status_code == 200, seeds.text
    row = next(row for row in seeds.json()["seeds"] if row["id"] == a)
    assert row["used"] is False and row["analysis"] == "missing" and row["accuracy"] is None
    assert row["error"] == f"The analysis file of run {a} is gone or unreadable, so this seed is left out."
    assert seeds.json()["mean"]["a"]["seeds"] == 0 and seeds.json()["mean"]["b"]["seeds"] == 1
    verdict = folder_api.get(f"/api/groups/{group}/verdict")
    assert verdict.status_code == 200, verdict.text
    assert verdict.json()["seeds_used"] == {"a": [], "b": [0]}
    analysis = folder_api.get(f"/api/runs/{a}/analysis")
    assert analysis.status_code == 409 and "analysis file is gone" in analysis.json()["error"]
