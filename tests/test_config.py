import pytest

from cnn import datasets
from cnn.config import DATASETS, ConfigError, validate


@pytest.mark.parametrize("typed", ["16-32-64", "16,32,64", " 16 - 32 - 64 ", [16, 32, 64], ["16", "32", "64"]])
def test_channels_typed_as_in_the_form(typed):
    assert validate({"channels": typed}).channels == [16, 32, 64]


def test_form_strings_become_numbers():
    cfg = validate({"lr": "0.01", "batch_size": "128", "epochs": "2", "kernel_size": "5", "train_samples": ""})
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.kernel_size, cfg.train_samples) == (0.01, 128, 2, 5, None)


@pytest.mark.parametrize(
    "field, value",
    [
        ("batch_size", True),
        ("batch_size", 1.5),
        ("lr", float("nan")),
        ("epochs", "three"),
        ("kernel_size", 4),
        ("channels", [True, 2]),  # a bool is no channel count, in a list as anywhere
        ("kernel_size", "5.0"),  # typed, a whole number is digits: 5.0 and 64.0 are refused alike
        ("batch_size", "64.0"),
    ],
)
def test_bad_values_name_their_field(field, value):
    with pytest.raises(ConfigError) as err:
        validate({field: value})
    assert err.value.field == field and field in str(err.value)


def test_the_config_offers_exactly_the_data_sets_the_engine_loads():
    assert set(DATASETS) == set(datasets.BUILTIN)
