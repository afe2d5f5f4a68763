"""The curves and run log of runs that hold out a validation share, in headless Chromium against a real
server: a validation line beside the test line, the kept epoch starred, the log saying which epoch's
weights were kept and whether early stopping ended the run; a reload draws the same from history."""

import re

import pytest
from playwright.sync_api import expect

# small real MNIST runs; patience 1 makes an early stop likely, and the test reads what the server decided
VALIDATED = {"channels": "4", "train_samples": 1024, "epochs": 8, "lr": 0.01, "validation": 0.3, "patience": 1}
PLAIN = {"channels": "4", "train_samples": 1024, "epochs": 2}


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


def ending(run):
    """The log's last line, from what the server says of the run."""
    info = run["info"]
    if info["early_stopped"]:
        return f"stopped early at epoch {info['epochs']}; best epoch {info['best_epoch']} kept"
    return f"ran all {info['epochs']} epochs; best epoch {info['best_epoch']} kept"


def drawn(page):
    """What the charts and logs show: points and the starred epoch per chart and slot, and each log."""
    charts = {
        (name, slot): (
            page.get_attribute(f"canvas[aria-label={name}]", f"data-points-{slot}"),
            page.get_attribute(f"canvas[aria-label={name}]", f"data-best-{slot}"),
        )
        for name in ("Loss", "Accuracy")
        for slot in "ab"
    }
    return charts, [page.inner_text(f"#panel-{s} .log") for s in "ab"]


def test_validation_line_kept_epoch_and_early_stop_are_shown_and_survive_a_reload(page, server):
    ids = server.start([VALIDATED, PLAIN])
    runs = [server.wait(run_id) for run_id in ids]
    assert [run["status"] for run in runs] == ["finished", "finished"]
    validated, plain = runs
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready]")
    assert [page.get_attribute(f"#panel-{s} .run", "data-run-id") for s in "ab"] == ids
    best, epochs = validated["info"]["best_epoch"], validated["metrics"]["epoch"]
    assert best is not None and len(epochs) == validated["info"]["epochs"]
    log = page.locator("#panel-a .log li")
    expect(log).to_have_count(len(epochs) + 1)
    expect(log.last).to_have_text(ending(validated))
    expect(log.nth(best - 1)).to_contain_text("(best so far)")
    first = re.compile(r"^epoch 1/8: val acc \d+\.\d\d%, loss \d\.\d{4}( \(best so far\))? · test acc ")
    expect(log.first).to_have_text(first)
    # A: training points, a test point and a validation point per epoch; B (no share): no validation line
    points = {"a": len(validated["metrics"]["batch"]) + 2 * len(epochs), "b": len(plain["metrics"]["batch"]) + 2}
    for name in ("Loss", "Accuracy"):
        chart = page.locator(f"canvas[aria-label={name}]")
        expect(chart).to_have_attribute("data-points-a", str(points["a"]))
        expect(chart).to_have_attribute("data-points-b", str(points["b"]))
        expect(chart).to_have_attribute("data-best-a", str(best))  # the kept epoch is starred
        assert chart.get_attribute("data-best-b") in (None, "")  # no share: nothing was chosen
    legend = page.evaluate("""() => Chart.getChart(document.querySelector('canvas[aria-label=Accuracy]'))
        .legend.legendItems.map((item) => item.text)""")
    assert "A validation" in legend and "B validation" not in legend
    assert page.locator("#panel-b .log li").all_inner_texts()[-1].startswith("epoch 2/2: test acc")  # no ending line
    before = drawn(page)
    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#panel-a .log li").last).to_have_text(ending(validated))
    page.wait_for_function(
        "n => document.querySelector('canvas[aria-label=Loss]').dataset.pointsA === n", arg=before[0]["Loss", "a"][0]
    )
    assert drawn(page) == before  # history replays through the live handlers: the same drawing
    assert page.errors == []
