from pathlib import Path

import pytest

from mmsim.cost_model import COUNTER_PRICES, CostModel, CostModelError, load_cost_model


def test_every_priced_counter_names_a_figure() -> None:
    model = CostModel()
    for counter, figure in COUNTER_PRICES.items():
        assert isinstance(getattr(model, figure), int), counter


def test_a_file_replaces_only_the_figures_it_names(tmp_path: Path) -> None:
    path = tmp_path / "cost.toml"
    path.write_text("page_fault = 1500\nbio_write = 80000\n")
    model = load_cost_model(path)
    assert model.page_fault == 1500
    assert model.bio_write == 80000
    assert model.copy_4k == CostModel().copy_4k


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('page_fault = "slow"\n', "field page_fault: Input should be a valid integer"),
        ("page_faults = 3\n", "field page_faults: Extra inputs are not permitted"),
        ("wakeup = -1\n", "field wakeup: Input should be greater than or equal to 0"),
        ("page_fault = \n", "not TOML"),
    ],
)
def test_a_malformed_file_names_file_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "cost.toml"
    path.write_text(text)
    with pytest.raises(CostModelError) as info:
        load_cost_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CostModelError, match="no such file"):
        load_cost_model(tmp_path / "absent.toml")


def test_device_latency_by_name() -> None:
    model = CostModel(bio_read=7)
    assert model.latency("bio_read") == 7
    with pytest.raises(ValueError, match="no device latency named 'disk'"):
        model.latency("disk")
