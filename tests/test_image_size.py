"""image_size, the side a folder dataset's images are resized to, through the real server: the check, a
short run, its analysis, an upload to predict, the samples and the augmentation preview all see the side
asked for; bad values and a built-in dataset asked for another side get a 400 naming the field."""

import re
import time
from urllib.parse import urlparse

import pytest
import torch
from conftest import server_in
from playwright.sync_api import expect
from test_images import b64, png, write_folder

from cnn import datasets

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:torchvision")
RUN = {"dataset": "folder:shades", "channels": [4], "epochs": 1, "batch_size": 8, "lr": 1e-2}


@pytest.fixture(scope="module")
def folder_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sized-data")
    write_folder(root, "shades", channels=3)
    return root


@pytest.fixture(scope="module")
def server(folder_data, tmp_path_factory):
    yield from server_in(folder_data, tmp_path_factory.mktemp("sized"))


def check(server, config):
    return server.post("/api/models/check", json={"config": config})


def test_the_check_shows_the_side_asked_for_and_the_layers_follow(server):
    got = check(server, {**RUN, "image_size": 40}).json()
    assert got["input_shape"] == [3, 40, 40] and got["config"]["image_size"] == 40
    assert [r["output_shape"] for r in got["layers"]][:2] == [[4, 40, 40], [4, 40, 40]]
    assert check(server, RUN).json()["input_shape"] == [3, 32, 32]  # empty: the default side
    assert check(server, {**RUN, "image_size": ""}).json()["input_shape"] == [3, 32, 32]  # an empty box


@pytest.fixture(scope="module")
def sized_run(server):
    """The id of a finished run of model A on folder:shades at 40x40."""
    (run_id,) = server.start([{**RUN, "image_size": 40}])
    server.wait(run_id, timeout=180)
    return run_id


def test_a_run_at_40_pixels_trains_is_analysed_and_classifies_an_upload(server, sized_run):
    run_id = sized_run
    run = server.wait(run_id)
    assert run["status"] == "finished" and run["info"]["shape"] == [3, 40, 40], run["error"]
    image = torch.randint(0, 40, (3, 50, 70))
    image[2] += 200  # a blue one, of another size: squeezed to 40x40
    answer = server.post("/api/predict", json={"file": b64(png(image.to(torch.uint8))), "runs": [run_id]})
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"][0]["probs"]) == 3
    # the analysis measured the test set at 40x40 too (at 32x32 the model could not take it)
    deadline = time.time() + 60
    while run["analysis"] in (None, "pending") and time.time() < deadline:
        time.sleep(0.2)
        run = server.get(f"/api/runs/{run_id}").json()
    assert run["analysis"] == "ready", run
    assert server.get(f"/api/runs/{run_id}/analysis").json()["shape"] == [3, 40, 40]


def test_the_samples_and_the_augmentation_preview_take_the_side(server):
    got = server.get("/api/samples?dataset=folder:shades&count=4&image_size=40").json()
    assert torch.tensor(got["images"]).shape == (4, 3, 40, 40) and got["shape"] == [3, 40, 40]
    body = {"dataset": "folder:shades", "image_size": 40, "augment": {"crop": 4}, "count": 4}
    got = server.post("/api/augment/preview", json=body).json()
    assert torch.tensor(got["original"]).shape == torch.tensor(got["augmented"]).shape == (4, 3, 40, 40)
    bad = server.get("/api/samples?dataset=folder:shades&count=4&image_size=99")
    assert bad.status_code == 400 and bad.json()["field"] == "image_size"


@pytest.mark.parametrize("value", [27, 65, "big", 32.5, "32.5", True, [40]])
def test_a_bad_side_is_refused_naming_the_field(server, value):
    answer = check(server, {**RUN, "image_size": value})
    assert answer.status_code == 400 and answer.json()["field"] == "image_size", answer.text
    assert "28 to 64" in answer.json()["error"]
    started = server.post("/api/runs", json={"models": [{**RUN, "image_size": value}]})
    assert started.status_code == 400 and started.json()["field"] == "models[0].image_size"


@pytest.mark.parametrize("value", [28, 64])
def test_the_bounds_are_accepted(server, value):
    assert check(server, {**RUN, "image_size": value}).json()["input_shape"] == [3, value, value]


@pytest.mark.parametrize("dataset, side, other", [("mnist", 28, 32), ("fashion_mnist", 28, 40), ("cifar10", 32, 28)])
def test_a_built_in_dataset_keeps_its_side_and_refuses_another(server, dataset, side, other):
    """Refused rather than ignored: a run is never silently trained at another side than it says."""
    assert check(server, {"dataset": dataset, "image_size": side}).json()["input_shape"][1:] == [side, side]
    answer = check(server, {"dataset": dataset, "image_size": other})
    assert answer.status_code == 400 and answer.json()["field"] == "image_size"
    assert f"{dataset} images are {side}x{side}" in answer.json()["error"]


def test_the_decoded_cache_keeps_one_file_per_side(folder_data, tmp_path):
    small = datasets.load("folder:shades", folder_data, False, tmp_path, 28)
    big = datasets.load("folder:shades", folder_data, False, tmp_path, 40)
    assert small[0].shape[1:] == (3, 28, 28) and big[0].shape[1:] == (3, 40, 40)
    assert torch.equal(small[1], big[1])  # the same test images, in the same order
    cached = sorted(p.name.rsplit("-", 1)[0] for p in tmp_path.glob("*.pt"))
    assert cached == ["folder-shades-28-test", "folder-shades-40-test"]  # one side does not evict the other
    assert datasets.open_dataset("folder:shades", folder_data, tmp_path, 40).meta()["shape"] == [3, 40, 40]


def test_the_page_shows_image_size_for_folder_datasets_only(browser, server, sized_run):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors, checks = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    checked = lambda r: r.method == "POST" and urlparse(r.url).path == "/api/models/check"  # noqa: E731
    page.on("request", lambda r: checks.append(r.post_data_json) if checked(r) else None)
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready]")
    # A shows its run's config: a folder at 40x40
    a, b = (page.get_by_role("group", name=f"Model {s}") for s in "AB")
    expect(a.get_by_label("image_size", exact=True)).to_have_value("40")
    expect(a.get_by_role("list", name="Diagram of model A").locator(".block-shape").first).to_have_text("3×40×40")
    # the grid shows its test images at 40x40, and A's answers on them
    expect(page.locator("#grid")).to_have_attribute("data-right-a", re.compile(r"^\d+$"))
    expect(page.locator("#grid canvas").first).to_have_attribute("width", "40")
    # B is on MNIST: no image_size to set, until it picks a folder
    size, dataset = b.get_by_label("image_size", exact=True), b.get_by_label("dataset", exact=True)
    shape = b.get_by_role("list", name="Diagram of model B").locator(".block-shape").first
    expect(size).to_be_hidden()
    dataset.select_option("folder:shades")
    expect(size).to_be_visible()
    expect(size).to_have_attribute("placeholder", "32")
    expect(shape).to_have_text("3×32×32")
    size.fill("48")
    expect(shape).to_have_text("3×48×48")
    size.fill("27")
    expect(b.locator("[data-field=image_size] .field-message")).to_contain_text("28 to 64")
    size.fill("48")
    expect(shape).to_have_text("3×48×48")
    # back on MNIST the field is hidden and not sent; what was typed is kept for the folder
    dataset.select_option("mnist")
    expect(size).to_be_hidden()
    expect(shape).to_have_text("1×28×28")
    assert [c["config"]["image_size"] for c in checks if c["slot"] == "b"][-1] is None
    dataset.select_option("folder:shades")
    expect(shape).to_have_text("3×48×48")
    assert not errors
    context.close()


def test_the_analysis_page_shows_a_40_pixel_runs_images_and_maps_at_40(browser, server, sized_run):
    run = server.wait(sized_run)
    deadline = time.time() + 60
    while run["analysis"] in (None, "pending") and time.time() < deadline:
        time.sleep(0.2)
        run = server.get(f"/api/runs/{sized_run}").json()
    # a confusion cell's gallery shows the test images the run was measured on: 40x40
    matrix = server.get(f"/api/runs/{sized_run}/analysis").json()["confusion"]
    true, pred = next((t, p) for t, row in enumerate(matrix) for p, n in enumerate(row) if n)
    cell = server.get(f"/api/runs/{sized_run}/confusion?true={true}&pred={pred}").json()
    assert cell["images"] and all(len(img[0]) == 40 and len(img[0][0]) == 40 for img in cell["images"])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server.url}/analysis?a={sized_run}&b={sized_run}")
    # the maps' input is a 40x40 test image, and the first conv's maps are 40x40
    expect(page.locator("#maps-source")).to_have_text(re.compile(r"^What both models receive: test image 0 "))
    expect(page.locator("#maps-preview")).to_have_attribute("width", "40")
    expect(page.locator("#maps-a .layer h4 > span:first-child").first).to_have_text("conv1 · 4 × 40 × 40")
    assert not errors
    context.close()
