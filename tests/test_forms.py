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


def tune(tmp_path, autotune=True, **fields):
    cfg = validate({"channels": [4, 8], "batch_size": 32, **fields})
    images = torch.randint(0, 255, (64, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (64,))
    return forms.choose(
        cfg, (1, 28, 28), 10, images, labels, data.norm_of("mnist"), torch.device("cpu"), tmp_path, True, autotune
    )


def test_the_autotuner_picks_a_form_caches_it_and_reuses_it(tmp_path, monkeypatch):
    monkeypatch.setattr(forms, "MAX_STEP_SECONDS", 60)
    first = tune(tmp_path)
    assert first["measured"] and set(first["rates"]) == {
        f"{f}/{p}" for f in ("plain", "pool_first", "first_conv") for p in ("fp32", "bf16")
    }
    assert f"{first['form']}/{first['precision']}" == max(first["rates"], key=first["rates"].get)
    again = tune(tmp_path)
    assert not again["measured"] and (again["form"], again["precision"]) == (first["form"], first["precision"])
    fixed = tune(tmp_path, precision="fp32")  # another precision is another entry, with fp32 forms only
    assert fixed["measured"] and all(k.endswith("/fp32") for k in fixed["rates"])


def test_a_corrupt_or_foreign_cache_entry_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setattr(forms, "MAX_STEP_SECONDS", 60)
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


def test_a_layer_stack_is_timed_only_in_its_precisions(tmp_path, monkeypatch):
    monkeypatch.setattr(forms, "MAX_STEP_SECONDS", 60)  # however busy the machine, this one is timed
    got = tune(tmp_path, layers=[{"type": "conv", "out": 4}, {"type": "relu"}])
    assert set(got["rates"]) == {"plain/fp32", "plain/bf16"} and got["form"] == "plain"


def test_a_network_too_slow_to_time_takes_the_plain_form_by_the_rule(tmp_path, monkeypatch):
    monkeypatch.setattr(forms, "MAX_STEP_SECONDS", 0)
    got = tune(tmp_path)
    assert (got["form"], got["precision"], got["rates"]) == ("plain", "bf16", {})  # native bf16 was given
