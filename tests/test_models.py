import contextlib
import math

import pytest
import torch
import torchinfo

from cnn.config import DEFAULT_B, validate
from cnn.first_conv import FirstConv
from cnn.models import build_model, mac_count, param_count


@pytest.mark.parametrize("kernel", [3, 5, 7])
@pytest.mark.parametrize("depth", range(1, 7))
def test_every_depth_and_kernel_gives_ten_scores(depth, kernel):
    cfg = validate({"channels": [4 + i for i in range(depth)], "kernel_size": kernel})
    model = build_model(cfg)
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert param_count(cfg) == sum(p.numel() for p in model.parameters())


SIZES = [([16, 32, 64], 3), ([8, 8, 8], 3), ([64, 128, 256], 5), ([4, 6, 8, 5], 7)]


@pytest.mark.parametrize("channels, kernel", SIZES)
def test_sizes_agree_with_torchinfo(channels, kernel):
    cfg = validate({"channels": channels, "kernel_size": kernel})
    model = build_model(cfg)
    summary = torchinfo.summary(model, input_size=(1, 1, 28, 28), verbose=0)
    assert param_count(cfg) == summary.total_params
    # torchinfo also counts each bias add as a multiply-accumulate: one per output value of a conv or linear layer
    layers = [i for i in summary.summary_list if i.class_name in ("Conv2d", "FirstConv", "Linear")]
    bias_adds = sum(math.prod(i.output_size[1:]) for i in layers)
    assert mac_count(cfg) + bias_adds == summary.total_mult_adds


def test_model_a_is_the_classic_cnn_with_a_7x7x64_head():
    model = build_model(validate({}))
    head = model[-1]
    assert head.in_features == 7 * 7 * 64 and head.out_features == 10
    # conv 1*9*16+16, 16*9*32+32, 32*9*64+64, head 3136*10+10
    assert param_count(validate({})) == 160 + 4640 + 18496 + 31370 == 54666


def test_model_b_default_is_8_8_8():
    cfg = validate({}, DEFAULT_B)
    assert cfg.channels == [8, 8, 8]
    assert param_count(cfg) == 80 + 584 + 584 + 10 * (8 * 49 + 1) == 5178


def test_the_model_computes_conv_relu_pool_as_the_rule_says():
    model = build_model(validate({"channels": [4, 6, 8]}))
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    x = torch.randn(5, 1, 28, 28)
    y = torch.nn.functional.max_pool2d(torch.relu(convs[0](x)), 2)
    y = torch.nn.functional.max_pool2d(torch.relu(convs[1](y)), 2)
    y = model[-1](torch.relu(convs[2](y)).flatten(1))
    assert torch.allclose(model(x), y, atol=1e-6)


def test_weights_saved_by_earlier_versions_still_load():
    # runs on disk hold state dicts keyed by layer position; the layout must not move
    keys = list(build_model(validate({})).state_dict())
    assert keys == ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias", "9.weight", "9.bias"]


@contextlib.contextmanager
def torch_threads(n):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def two_threads():
    """FirstConv takes its own path only where it was measured faster: 2+ threads, 3x3, batch >= 16."""
    with torch_threads(2):
        yield


@pytest.mark.parametrize("channels_last", [True, False])
def test_the_first_layer_learns_as_accurately_as_torchs_convolution(two_threads, channels_last):
    """FirstConv's own weight gradient (a CPU speed-up) is as close to the exact one as nn.Conv2d's,
    on a batch larger than one of its chunks."""
    torch.manual_seed(0)
    fast = build_model(validate({"channels": [5]}))[0]
    plain = torch.nn.Conv2d(1, 5, 3, padding=1)
    exact = torch.nn.Conv2d(1, 5, 3, padding=1).double()
    plain.load_state_dict(fast.state_dict())
    exact.load_state_dict(fast.state_dict())
    x, grad = torch.randn(600, 1, 28, 28), torch.randn(600, 5, 28, 28)
    if channels_last:
        x, grad = x.contiguous(memory_format=torch.channels_last), grad.contiguous(memory_format=torch.channels_last)
    out = fast(x)
    assert type(out.grad_fn).__name__ == "_ConvBackward"  # its own path, not torch's
    out.backward(grad)
    plain(x).backward(grad)
    exact(x.double()).backward(grad.double())
    for name in ("weight", "bias"):
        truth = getattr(exact, name).grad.float()
        ours, torchs = getattr(fast, name).grad, getattr(plain, name).grad
        assert relative_error(ours, truth) <= 2 * relative_error(torchs, truth) + 1e-6


def test_the_first_layer_learns_under_bf16_autocast(two_threads):
    torch.manual_seed(0)
    fast = build_model(validate({"channels": [4]}))[0]
    plain = torch.nn.Conv2d(1, 4, 3, padding=1)
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(16, 1, 28, 28)
    for conv in (fast, plain):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = conv(x)
        assert out.dtype == torch.bfloat16
        assert (type(out.grad_fn).__name__ == "_ConvBackward") == (conv is fast)
        out.float().square().mean().backward()
    for name in ("weight", "bias"):
        assert getattr(fast, name).grad.dtype == torch.float32
        assert relative_error(getattr(fast, name).grad, getattr(plain, name).grad) < 0.02


def test_the_first_layer_refuses_settings_its_gradient_does_not_cover():
    with pytest.raises(ValueError, match="one-channel first layer"):
        FirstConv(2, 4, 3, padding=1)
    with pytest.raises(ValueError, match="same padding"):
        FirstConv(1, 4, 3, padding=0)


@pytest.mark.parametrize("kernel,batch,threads", [(7, 64, 2), (3, 8, 2), (3, 64, 1)])
def test_the_first_layer_keeps_torchs_backward_where_that_was_faster(kernel, batch, threads):
    with torch_threads(threads):
        out = build_model(validate({"channels": [4], "kernel_size": kernel}))[0](torch.randn(batch, 1, 28, 28))
    assert type(out.grad_fn).__name__ == "ConvolutionBackward0"


def relative_error(a, b):
    return ((a - b).norm() / b.norm()).item()
