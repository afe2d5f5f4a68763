import pytest
import torch

from cnn.config import DEFAULT_B, validate
from cnn.models import build_model, param_count


@pytest.mark.parametrize("kernel", [3, 5, 7])
@pytest.mark.parametrize("depth", range(1, 7))
def test_every_depth_and_kernel_gives_ten_scores(depth, kernel):
    cfg = validate({"channels": [4 + i for i in range(depth)], "kernel_size": kernel})
    model = build_model(cfg)
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert param_count(cfg) == sum(p.numel() for p in model.parameters())


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
