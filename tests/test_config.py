import pytest

from dreamlift.config import load_config, preset_names
from dreamlift.errors import UsageError
from dreamlift.pipelines.text_to_3d import Text3DConfig


def test_default_preset_loads_and_overrides_apply():
    config = load_config(Text3DConfig, "dreamfusion", ["guidance.scale=50", "camera.fov_range=[30, 40]", "field.hashgrid.num_levels=4"])
    assert config.guidance.scale == 50.0 and isinstance(config.guidance.scale, float)
    assert config.camera.fov_range == (30.0, 40.0)
    assert config.field.hashgrid.num_levels == 4
    assert config.guidance.t_max_final == 0.5  # from the preset, not the dataclass default
    assert "dreamfusion" in preset_names()


def test_numbers_in_exponent_notation_are_numbers():
    config = load_config(Text3DConfig, "dreamfusion", ["optim.lr_mlp=1e-3", "guidance.scale=2E1"])
    assert config.optim.lr_mlp == 1e-3 and config.guidance.scale == 20.0


def test_values_take_python_objects_verbatim():
    config = load_config(Text3DConfig, None, [], {"prompt": "yes", "train.steps": 5})
    assert config.prompt == "yes" and config.train.steps == 5


@pytest.mark.parametrize(
    "override, message",
    [
        ("guidance.scael=5", "unknown config key 'guidance.scael'"),
        ("nonsense=1", "unknown config key 'nonsense'"),
        ("train.steps=abc", "'train.steps' must be a whole number"),
        ("guidance.scale=.nan", "'guidance.scale' must be a finite number"),
        ("guidance.scale=1e", "'guidance.scale' must be a number"),
        ("train.steps=0", "steps must be > 0"),
        ("guidance.weighting=cubic", "'guidance.weighting' must be one of"),
        ("camera.fov_range=[1, 2, 3]", "must have 2 items"),
        ("guidance=3", "must be a mapping"),
        ("train.steps", "must look like key.subkey=value"),
    ],
)
def test_bad_overrides_name_the_problem(override, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_config(Text3DConfig, "dreamfusion", [override])


def test_unknown_preset_and_bad_yaml(tmp_path):
    with pytest.raises(UsageError, match="unknown config preset 'nope'"):
        load_config(Text3DConfig, "nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("guidance: {scale: 1\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_config(Text3DConfig, str(bad))
    typo = tmp_path / "typo.yaml"
    typo.write_text("renderer:\n  num_sample: 3\n")
    with pytest.raises(UsageError, match="unknown config key 'renderer.num_sample'"):
        load_config(Text3DConfig, str(typo))
