"""Repeats over seeds on the main page, in headless Chromium against a server of its own: the repeats box
sends "repeats" and shows the server's refusal; the store keeps every seed by slot; the group's progress,
a band over the seeds for each model, error bars on the test accuracy, and the verdict citing the seeds it
used; Stop ends every seed of the group. The analysis page of a group: every seed in a table and a strip
plot, with the group's verdict."""

import re
import time

import pytest
from conftest import server_in
from playwright.sync_api import expect

from cnn.verdict import p_text

TINY = {"train_samples": 512, "epochs": 2, "batch_size": 64}  # six of these train in about a minute
SLOW = {"channels": "4", "train_samples": 4096, "epochs": 8, "batch_size": 32}  # still training when stopped
TIMEOUT = 300_000  # ms: six runs on two shared cores, then six analyses of the full test set


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    """No earlier pair: the page opens empty, and its runs are the only ones training."""
    yield from server_in(data_dir, tmp_path_factory.mktemp("repeats"))


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors, page.posts = [], []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/api/runs") and page.posts.append(r))
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready]")
    yield page
    context.close()


def fill(page, slot, **values):
    group = page.get_by_role("group", name=f"Model {slot.upper()}")
    for field, value in values.items():
        group.get_by_label(field, exact=True).fill(str(value))
    expect(group.locator(".params")).to_have_text(re.compile(r"^[\d,]+ parameters$"))  # checked by the server


def train(page, repeats, a, b):
    fill(page, "a", **a)
    fill(page, "b", **b)
    page.get_by_label("repeats", exact=True).fill(str(repeats))
    page.get_by_role("button", name="Train", exact=True).click()


def points(x):
    """A difference of accuracies as the Seeds section writes it: "+0.29", "−1.20"."""
    return f"{'+' if x > 0 else '−' if x < 0 else ''}{abs(100 * x):.2f}"


def p_cell(p):
    """A p-value as the McNemar table writes it: "0.69", "< 0.001"."""
    return p_text(p).removeprefix("p = ").removeprefix("p ")


def chart(page, name):
    return page.locator(f"canvas[aria-label={name}]")


def test_repeats_draw_a_band_per_model_and_the_verdict_cites_the_seeds(page, server):
    train(page, 3, {**TINY, "channels": "4"}, {**TINY, "channels": "8"})
    progress = page.locator("#group-progress")
    # runs done out of runs planned, with the time left once a seed trains
    left = re.compile(r"of 6 runs done · \d training, \d queued · \d+:\d\d left")
    expect(progress).to_contain_text(left, timeout=TIMEOUT)
    assert page.posts[0].post_data_json["repeats"] == 3
    verdict = page.locator("#group-verdict")
    expect(verdict).to_have_attribute("data-state", "ready", timeout=TIMEOUT)
    expect(progress).to_have_attribute("data-done", "6")
    expect(progress).to_contain_text("6 of 6 runs done")
    expect(verdict).to_contain_text("3 seeds of A and 3 of B")
    expect(verdict).to_contain_text("Seeds used: A 0, 1, 2; B 0, 1, 2.")
    interval = r"\d+\.\d\d% \(95% interval \d+\.\d\d% to \d+\.\d\d%\)"
    expect(verdict).to_contain_text(re.compile(f"Mean test accuracy: A {interval}, B {interval}."))
    faster = r"Training time: [AB] trains faster( on average)?: [\d.]+ s against [\d.]+ s per seed, p [=<] [\d.]+ "
    faster += r"\(Welch's t\)"
    expect(verdict).to_contain_text(re.compile(faster))
    for slot in "ab":
        expect(verdict).to_have_attribute(f"data-seeds-{slot}", "3")
        seeds = page.locator(f"#panel-{slot} .seed-list")
        expect(seeds).to_have_text(re.compile(r"^seeds: 0 finished .* · 2 finished"))
    # each model's test curve: the mean over its three seeds, with a band of both epochs; error bars on accuracy
    for name in ("Loss", "Accuracy"):
        for slot in "ab":
            expect(chart(page, name)).to_have_attribute(f"data-band-{slot}", "3")
            expect(chart(page, name)).to_have_attribute(f"data-band-points-{slot}", "2")
    for slot in "ab":
        expect(chart(page, "Accuracy")).to_have_attribute(f"data-error-bars-{slot}", "2")
    legend = page.evaluate("""() => Chart.getChart(document.querySelector('canvas[aria-label=Accuracy]'))
        .legend.legendItems.map((item) => item.text)""")
    assert "A test (mean of 3 seeds)" in legend and "B min–max" in legend
    # the user picks the band, and may see every seed's own line
    page.get_by_label("band", exact=True).select_option("sd")
    page.get_by_label("single seeds").check()
    for slot in "ab":
        expect(chart(page, "Accuracy")).to_have_attribute(f"data-seed-lines-{slot}", "3")
        expect(chart(page, "Accuracy")).to_have_attribute(f"data-band-{slot}", "3")
    expect(page.get_by_role("link", name="Analyse A vs B")).to_be_visible()
    # a reload rebuilds all of it from history
    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.get_by_label("repeats", exact=True)).to_have_value("3")
    expect(verdict).to_contain_text("3 seeds of A and 3 of B")
    for slot in "ab":
        expect(chart(page, "Loss")).to_have_attribute(f"data-band-{slot}", "3")
    assert page.errors == []


@pytest.fixture
def group(server):
    """An ended group with three seeds per model and its verdict: the band test's when it ran first (so no
    second group trains), else one trained here."""
    runs = server.get("/api/runs").json()["runs"]  # newest first
    ended = [r["group"] for r in runs if r["repeats"] == 3 and r["status"] == "finished"]
    if ended:
        group = ended[0]
    else:
        models = [{**TINY, "channels": [4]}, {**TINY, "channels": [8]}]
        answer = server.post("/api/runs", json={"models": models, "repeats": 3})
        assert answer.status_code == 202, answer.text
        group = answer.json()["runs"][0]["group"]
    deadline = time.time() + TIMEOUT / 1000
    while time.time() < deadline:  # 409 until every seed has ended and been analysed
        answer = server.get(f"/api/groups/{group}/verdict")
        if answer.status_code == 200:
            return group, answer.json()
        assert answer.status_code == 409, answer.text
        time.sleep(0.5)
    raise AssertionError(f"group {group} has no verdict after {TIMEOUT // 1000} s")


def test_the_group_seeds_route_lists_every_seed_with_its_scores(server, group):
    group, verdict = group
    got = server.get(f"/api/groups/{group}/seeds").json()
    assert got["group"] == group and got["repeats"] == 3 and got["waiting"] == 0
    for slot in "ab":
        rows = [row for row in got["seeds"] if row["model"] == slot]
        assert [row["seed"] for row in rows] == verdict["seeds_used"][slot] and all(row["used"] for row in rows)
        assert [row["accuracy"] for row in rows] == verdict["accuracy"][slot]["values"]
        assert all(0 < row["macro_f1"] <= 1 and row["train_seconds"] > 0 for row in rows)
        assert got["mean"][slot]["seeds"] == 3
        assert got["mean"][slot]["accuracy"] == pytest.approx(verdict["accuracy"][slot]["mean"])
    for path in ("seeds", "verdict"):
        answer = server.get(f"/api/groups/nosuchgroup/{path}")
        assert answer.status_code == 404 and "no group with id 'nosuchgroup'" in answer.json()["error"]


def test_the_analysis_link_of_a_group_shows_every_seed_and_a_strip_plot(page, server, group):
    group, verdict = group
    page.reload()  # the main page shows the newest group: this one
    page.wait_for_selector("body[data-ready]")
    page.get_by_role("link", name="Analyse A vs B").click()
    page.wait_for_selector("body[data-ready]")
    seeds = page.locator("#seeds")
    expect(seeds).to_be_visible()
    expect(seeds).to_have_attribute("data-state", "ready")
    expect(page.locator("#seeds-verdict")).to_have_text(verdict["sentence"])
    for slot in "ab":
        rows = seeds.locator(f"tr.seed-row[data-model={slot}]")
        expect(rows).to_have_count(3)
        seed_texts = rows.locator("td:nth-child(2)").all_inner_texts()
        assert seed_texts == [str(s) for s in verdict["seeds_used"][slot]]
        accuracies = rows.locator("td:nth-child(3)").all_inner_texts()
        assert accuracies == [f"{100 * v:.2f}%" for v in verdict["accuracy"][slot]["values"]]
        assert all(re.fullmatch(r"0\.\d{3}", f1) for f1 in rows.locator("td:nth-child(4)").all_inner_texts())
        expect(rows.locator("td.status")).to_have_text(["finished"] * 3)
        mean = seeds.locator(f"tr.mean-row[data-model={slot}]")
        expect(mean.locator("td").nth(0)).to_have_text("3 seeds")
        expect(mean.locator("td").nth(1)).to_have_text(f"{100 * verdict['accuracy'][slot]['mean']:.2f}%")
        # the strip plot: a dot per seed on each model's row, and a bar at its mean
        expect(page.locator(f"#seeds-plot circle.seed-dot[data-model={slot}]")).to_have_count(3)
        expect(page.locator(f"#seeds-plot line.seed-mean[data-model={slot}]")).to_have_count(1)
    # the top verdict answers "is config A better than config B?" over the seeds, not one pair's winner
    top = page.locator("#verdict-text")
    expect(top).to_contain_text(f"Is config A better than config B? {verdict['sentence']}")
    expect(top).to_have_attribute("data-question", "configs")
    # the evidence: each model's mean with its 95% interval; the difference with its interval, p-value, method
    for slot in "ab":
        mean, (low, high) = verdict["accuracy"][slot]["mean"], verdict["accuracy"][slot]["ci95"]
        expect(seeds.locator(f"#seeds-facts [data-fact={slot}]")).to_have_text(
            f"{slot.upper()}: mean test accuracy {100 * mean:.2f}%, 95% interval {100 * low:.2f}% to "
            f"{100 * high:.2f}% over 3 seeds (Student's t)."
        )
    diff = verdict["difference"]
    expect(seeds.locator("#seeds-facts [data-fact=difference]")).to_have_text(
        f"A − B: {points(diff['mean'])} points, 95% interval {points(diff['ci95'][0])} to "
        f"{points(diff['ci95'][1])} (Welch's t), {p_text(diff['p_value'])}."
    )
    time_said = verdict["train_seconds"]["sentence"]
    expect(seeds.locator("#seeds-facts [data-fact=time]")).to_have_text(f"Training time: {time_said}")
    # and McNemar's test of each seed pair, the k-th seed of A with the k-th of B
    pairs = [
        [*(str(p[k]) for k in ("seed_a", "seed_b", "only_a", "only_b")), p_cell(p["p_value"])]
        for p in verdict["mcnemar"]
    ]
    assert len(pairs) == 3
    rows = seeds.locator("#seeds-mcnemar tr.pair-row")
    expect(rows).to_have_count(3)
    assert [row.locator("td").all_inner_texts() for row in rows.all()] == pairs
    assert page.errors == []


def test_the_analysis_page_opens_a_group_by_its_id(page, server, group):
    group, verdict = group
    runs = [r for r in server.get("/api/runs").json()["runs"] if r["group"] == group]
    first = {slot: next(r["id"] for r in runs if r["slot"] == i and r["repeat"] == 0) for i, slot in enumerate("ab")}
    page.goto(f"{server.url}/analysis?group={group}")
    page.wait_for_selector("body[data-ready]")
    for slot in "ab":  # the pickers show each model's first seed; the Seeds section every seed
        expect(page.locator(f"#run-{slot}")).to_have_value(first[slot])
    expect(page.locator("#seeds-plot circle.seed-dot")).to_have_count(6)
    expect(page.locator("#seeds-verdict")).to_have_text(verdict["sentence"])
    page.goto(f"{server.url}/analysis?group=nosuchgroup")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator(".pickers .message")).to_have_text(re.compile("^There is no group nosuchgroup"))
    assert page.errors == []


def test_a_repeats_value_the_server_refuses_shows_its_sentence(page, server):
    before = len(server.get("/api/runs").json()["runs"])
    train(page, 11, {"channels": "4"}, {"channels": "8"})
    message = page.locator("#train-message")
    expect(message).to_have_text("repeats: must be a whole number from 1 to 10")
    expect(page.get_by_label("repeats", exact=True)).to_have_attribute("aria-invalid", "true")
    assert page.posts[0].post_data_json["repeats"] == 11  # the server holds the bounds, not the page
    assert len(server.get("/api/runs").json()["runs"]) == before
    page.get_by_label("repeats", exact=True).fill("2")  # read and corrected: the sentence goes
    expect(message).to_have_text("")
    expect(page.get_by_label("repeats", exact=True)).to_have_attribute("aria-invalid", "false")


# The store with a group of two seeds per slot: history lists each slot's seeds newest first, a POST answer
# names no repeat (its seeds come in order); both are the same group shown, each seed in its place.
STORE = """async (contract) => {
    const { Store } = await import('/static/js/store.js');
    const record = (slot, repeat) => ({id: `r${slot}${repeat}`, group: 'g', slot, repeat, repeats: 2, seed: 5 + repeat,
                                       status: repeat ? 'queued' : 'running', config: {epochs: 1, seed: 5}, info: {}});
    const store = new Store(contract);
    const seen = [];
    store.subscribe((c) => seen.push(c.kind === 'seed' ? `seed ${c.event} ${c.slot}${c.repeat}` : c.kind));
    store.apply('history', {runs: [record(0, 1), record(0, 0), record(1, 1), record(1, 0)], older: []});
    const answer = [record(0, 0), record(1, 0), record(0, 1), record(1, 1)].map(({repeat, ...r}) => r);
    store.apply('batch', {run_id: 'r01', epoch: 1, step: 1, steps: 2, samples_seen: 64, loss: 1, acc: 0.5});
    store.apply('batch', {run_id: 'r10', epoch: 1, step: 1, steps: 2, samples_seen: 64, loss: 1, acc: 0.5});
    return {seeds: store.seeds.a.map((r) => [r.id, r.seed]), lead: [store.runs.a.id, store.runs.b.id],
            shows: store.shows(answer), repeats: store.repeats, active: store.active(), seen};
}"""


def test_the_store_keeps_every_seed_in_its_slot(page, server):
    contract = server.get("/api/schema").json()["events"]
    got = page.evaluate(STORE, contract)
    assert got["seeds"] == [["r00", 5], ["r01", 6]]
    assert got["lead"] == ["r00", "r10"]  # a slot's first seed is what the pad, grid and upload ask about
    assert got["shows"] and got["repeats"] == 2 and got["active"] == ["a", "b"]
    # the first seed's changes are the usual ones; another seed's are "seed" changes
    assert got["seen"] == ["reset", "ready", "seed batch a1", "seed status a1", "batch"]  # a batch means it trains


def test_stop_ends_every_seed_of_the_group(page, server):
    train(page, 3, SLOW, {**SLOW, "channels": "8"})
    expect(page.locator("#panel-a .run")).to_have_attribute("data-status", "running", timeout=TIMEOUT)
    runs = [r for r in server.get("/api/runs").json()["runs"] if r["repeats"] == 3 and r["config"]["epochs"] == 8]
    assert len(runs) == 6 and len({r["group"] for r in runs}) == 1
    page.get_by_role("button", name="Stop", exact=True).click()
    progress = page.locator("#group-progress")
    expect(progress).to_have_attribute("data-done", "6", timeout=TIMEOUT)
    expect(progress).to_contain_text("6 of 6 runs done · 6 stopped")
    assert [server.get(f"/api/runs/{r['id']}").json()["status"] for r in runs] == ["stopped"] * 6
    expect(page.get_by_role("button", name="Train", exact=True)).to_be_enabled()
    assert page.errors == []
    # the analysis page lists every seed, each left out of the means and the plot
    seeds = server.get(f"/api/groups/{runs[0]['group']}/seeds").json()
    assert [row["used"] for row in seeds["seeds"]] == [False] * 6 and seeds["mean"]["a"]["seeds"] == 0
    page.goto(f"{server.url}/analysis?group={runs[0]['group']}")
    expect(page.locator("#seeds tr.seed-row td.status")).to_have_text(["stopped · left out"] * 6)
    expect(page.locator("#seeds-plot circle.seed-dot")).to_have_count(0)
    expect(page.locator("#seeds-verdict")).to_contain_text("No seed of one model ended with an analysis")
