"""Measure, then choose: every form of a network computes the same function, and the choice is cached."""

import json

import pytest
import torch

from cnn import data, forms
from cnn.config import validate
from cnn.models import build_model

CONFIGS = [({"channels": [4, 6, 8]}, (1, 28, 28)), ({"channels": [5, 7], "kernel_size": 5}, (3, 32, 32))]


@pytest.mark.parametrize("fields, shape", CONFIGS)
@pytest.mark.parametrize("form", ["pool_first", "first_conv"])
def test_every_form_computes_the_plain_networks_outputs_and_gradients(fields, shape, form):
    cfg = validate(fields)
    plain, other = build_model(cfg, shape, 10, form="plain"), build_model(cfg, shape, 10, form=form)
    other.load_state_dict(plain.state_dict())  # the same keys: a checkpoint of any form loads into any other
    x = torch.randn(32, *shape)  # FirstConv's own backward runs from a batch of 16 on two threads
    outputs = []
    for model in (plain, other):
        out = model(x)
        out.square().sum().backward()
        outputs.append((out.detach(), [p.grad for p in model.parameters()]))
    (out_a, grads_a), (out_b, grads_b) = outputs
    assert torch.allclose(out_a, out_b, atol=1e-5)
    for a, b in zip(grads_a, grads_b, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    """However loaded the machine running the tests, it counts as quiet unless a test says otherwise."""
    monkeypatch.setattr(forms, "busy", lambda device: False)


def tune(tmp_path, autotune=True, **fields):
    cfg = validate({"channels": [4, 8], "batch_size": 32, **fields})
    images = torch.randint(0, 255, (64, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (64,))
    return forms.choose(
        cfg, (1, 28, 28), 10, images, labels, data.norm_of("mnist"), torch.device("cpu"), tmp_path, True, autotune
    )


def chosen_is_fastest(got):
    """The choice (form, precision, threads) is the fastest finalist (the fastest fp32 and bf16 forms, timed
    again at each thread count: those with a "/<n>t" rate), or of every candidate where there was no final; or
    the fastest fp32 one where bf16 wins by under the margin (test_bf16_is_chosen_only_when_it_pays)."""
    tops = {k.rsplit("/", 1)[0] for k in got["rates"] if k.endswith("t")}
    final = {k: v for k, v in got["rates"].items() if k in tops or k.rsplit("/", 1)[0] in tops} or got["rates"]
    label, threads = forms.split(forms.pick(final), torch.get_num_threads())
    return (f"{got['form']}/{got['precision']}", got["threads"]) == (label, threads)


def test_the_autotuner_picks_a_form_caches_it_and_reuses_it(tmp_path):
    first = tune(tmp_path)
    forms_timed = {f"{f}/{p}" for f in ("plain", "pool_first", "first_conv") for p in ("fp32", "bf16")}
    # and the fastest fp32 and bf16 forms again at one thread
    at_one = {k.removesuffix("/1t") for k in set(first["rates"]) - forms_timed}
    assert first["measured"] and len(at_one) == 2 and {k.split("/")[1] for k in at_one} == {"fp32", "bf16"}
    assert forms_timed <= set(first["rates"]) and chosen_is_fastest(first)
    again = tune(tmp_path)
    assert not again["measured"] and [again[k] for k in ("form", "precision", "threads")] == [
        first[k] for k in ("form", "precision", "threads")
    ]
    fixed = tune(tmp_path, precision="fp32")  # another precision is another entry, with fp32 forms only
    assert fixed["measured"] and all("/fp32" in k for k in fixed["rates"])


def test_a_corrupt_or_foreign_cache_entry_is_measured_again(tmp_path):
    tune(tmp_path)
    path = tmp_path / forms.CACHE_FILE
    entries = json.loads(path.read_text())
    ((key, entry),) = entries.items()
    entries[key] = {"choice": "warp_drive/fp64", "rates": {}}  # a form this engine does not have
    entries[key.replace(torch.__version__, "1.0.0")] = entry  # a stale torch version's entry is someone else's
    path.write_text(json.dumps(entries))
    assert tune(tmp_path)["measured"]
    path.write_text("{not json")
    assert tune(tmp_path)["measured"] and json.loads(path.read_text())  # remade


def test_without_autotune_the_form_is_plain(tmp_path):
    got = tune(tmp_path, autotune=False)
    assert (got["form"], got["measured"], got["rates"]) == ("plain", False, {})
    assert not (tmp_path / forms.CACHE_FILE).exists()


def test_a_layer_stack_is_timed_only_in_its_precisions(tmp_path):
    got = tune(tmp_path, layers=[{"type": "conv", "out": 4}, {"type": "relu"}])
    precisions = {k for k in got["rates"] if not k.endswith("t")}  # and the chosen one at fewer threads
    assert precisions == {"plain/fp32", "plain/bf16"} and got["form"] == "plain"


def test_a_slow_network_is_rated_without_costing_more_than_its_steps(tmp_path, monkeypatch):
    # every step counts as slow: each candidate is rated from its warm-up or one timed step, never two passes
    monkeypatch.setattr(forms, "SLOW_STEP_SECONDS", 0)
    calls = []
    monkeypatch.setattr(forms, "rate", lambda *a: calls.append(a) or 0.0)
    got = tune(tmp_path)
    assert got["measured"] and len(got["rates"]) == 8 and all(r > 0 for r in got["rates"].values())
    assert calls == [] and chosen_is_fastest(got)


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_a_lone_run_times_its_form_at_fewer_threads_and_keeps_the_faster(tmp_path, two_threads):
    got = tune(tmp_path)
    chosen = f"{got['form']}/{got['precision']}"
    one, two = got["rates"][f"{chosen}/1t"], got["rates"][chosen]
    assert got["threads"] == (1 if one > two else 2) and torch.get_num_threads() == 2  # the caller sets it
    path = tmp_path / forms.CACHE_FILE
    entries = json.loads(path.read_text())
    for entry in entries.values():
        entry["threads"] = 64  # more than this run is allotted: not taken
    path.write_text(json.dumps(entries))
    assert tune(tmp_path)["threads"] == 2


def test_a_busy_machine_has_a_choice_of_its_own(tmp_path, monkeypatch):
    assert tune(tmp_path)["measured"]
    monkeypatch.setattr(forms, "busy", lambda device: True)
    busy = tune(tmp_path)
    assert busy["measured"] and busy["busy"]  # timed again: what wins on a quiet CPU can lose on a busy one
    assert not tune(tmp_path)["measured"]
    monkeypatch.setattr(forms, "busy", lambda device: False)
    again = tune(tmp_path)
    assert not again["measured"] and not again["busy"]  # the quiet machine's choice was kept
    assert len(json.loads((tmp_path / forms.CACHE_FILE).read_text())) == 2


def test_bf16_is_chosen_only_when_it_pays():
    assert forms.pick({"plain/fp32": 1000, "plain/bf16": 1040}) == "plain/fp32"  # within the margin
    assert forms.pick({"plain/fp32": 1000, "pool_first/bf16": 2000}) == "pool_first/bf16"
    assert forms.pick({"plain/bf16": 900}) == "plain/bf16"  # bf16 asked for: no fp32 to prefer


def test_a_choice_an_older_timing_rule_made_is_made_again(tmp_path, monkeypatch):
    rule = forms.RULE
    monkeypatch.setattr(forms, "RULE", rule - 1)
    assert tune(tmp_path)["measured"]
    monkeypatch.setattr(forms, "RULE", rule)
    assert tune(tmp_path)["measured"]  # rule 1's best-of-two leaned towards two threads: not trusted


def test_each_rate_is_the_median_of_fresh_windows_the_same_number_for_every_candidate(monkeypatch, two_threads):
    # the windows a shared machine gives: one lucky window must not decide (rule 1 kept the best window, and the
    # allotted count had more windows from earlier passes to draw it from)
    windows = {2: iter([9000, 5000, 5200]), 1: iter([6000, 6100, 5900])}
    monkeypatch.setattr(forms, "rate", lambda step, n, device: next(windows[torch.get_num_threads()]))
    rates = {"plain/bf16": 9500.0}  # its best window from the first passes
    steppers = {"plain/bf16": (lambda: None, 64, False), "plain/bf16/1t": (lambda: None, 64, False)}
    forms.passes(steppers, rates, torch.device("cpu"), {"plain/bf16/1t": 1})
    assert rates == {"plain/bf16": 5200, "plain/bf16/1t": 6000}
    assert forms.pick(rates) == "plain/bf16/1t" and torch.get_num_threads() == 2
