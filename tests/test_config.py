import pytest

from dreamlift.config import load_config, preset_names
from dreamlift.errors import UsageError
from dreamlift.text3d.config import Text3DConfig


def test_default_preset_loads_and_overrides_apply():
    config = load_config(
        Text3DConfig, "dreamfusion", ["guidance.scale=50", "camera.fov_range=[30, 40]", "field.hashgrid.num_levels=4"]
    )
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


def test_presets_inherit_from_their_base_and_hold_only_what_differs():
    from dreamlift.config import PRESET_DIR

    for name in preset_names():
        if name != "dreamfusion":
            raw = (PRESET_DIR / f"{name}.yaml").read_text()
            assert raw.count("\nbase: ") == 1 and "renderer:" not in raw and "field:" not in raw
    vsd = load_config(Text3DConfig, "prolificdreamer")
    assert vsd.guidance.kind == "vsd" and vsd.guidance.scale == 7.5
    assert vsd.guidance.t_max_final == 0.5 and vsd.field.hashgrid.num_levels == 8  # from dreamfusion
    esd = load_config(Text3DConfig, "esd")
    assert esd.guidance.kind == "esd" and esd.guidance.scale == 7.5 and esd.guidance.vsd.lora_rank == 4


def test_a_preset_whose_base_chain_loops_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text(f"base: {tmp_path / 'b.yaml'}\n")
    (tmp_path / "b.yaml").write_text(f"base: {tmp_path / 'a.yaml'}\ntrain:\n  steps: 3\n")
    with pytest.raises(UsageError, match="without a cycle"):
        load_config(Text3DConfig, str(tmp_path / "a.yaml"))


def test_a_config_records_only_the_guidance_section_of_its_kind():
    from dreamlift.config import dump_yaml

    sds = dump_yaml(load_config(Text3DConfig, "dreamfusion"))
    assert "vsd:" not in sds and "sjc:" not in sds and "esd:" not in sds and "perp_neg:" in sds
    vsd = dump_yaml(load_config(Text3DConfig, "prolificdreamer"))
    assert "lora_rank:" in vsd and "sjc:" not in vsd and "esd:" not in vsd
    assert load_config(Text3DConfig, "dreamfusion", ["guidance.kind=sjc"]).guidance.sjc.samples == 2
    with pytest.raises(UsageError, match="guidance.vsd applies to kind vsd or esd only, not sds"):
        load_config(Text3DConfig, "dreamfusion", ["guidance.vsd.lora_rank=8"])
