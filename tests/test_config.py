import pytest

from cnn.config import ConfigError, validate


@pytest.mark.parametrize("typed", ["16-32-64", "16,32,64", " 16 - 32 - 64 ", [16, 32, 64], ["16", "32", "64"]])
def test_channels_typed_as_in_the_form(typed):
    assert validate({"channels": typed}).channels == [16, 32, 64]


def test_form_strings_become_numbers():
    cfg = validate({"lr": "0.01", "batch_size": "128", "epochs": "2", "kernel_size": "5", "train_samples": ""})
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.kernel_size, cfg.train_samples) == (0.01, 128, 2, 5, None)


@pytest.mark.parametrize(
    "field, value",
    [("batch_size", True), ("batch_size", 1.5), ("lr", float("nan")), ("epochs", "three"), ("kernel_size", 4)],
)
def test_bad_values_name_their_field(field, value):
    with pytest.raises(ConfigError) as err:
        validate({field: value})
    assert err.value.field == field and field in str(err.value)
