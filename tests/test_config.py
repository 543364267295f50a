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


def test_a_section_given_in_part_keeps_the_rest_of_its_field_s_default():
    # RefineConfig's dmtet and optim fields default to instances unlike their classes' defaults
    config = load_config(Text3DConfig, None, ["refine.dmtet.hidden_dim=16", "refine.optim.lr_mlp=2e-3"])
    assert config.refine.dmtet.grid_resolution == 48 and config.refine.dmtet.hidden_dim == 16
    assert config.refine.optim.lr_grid == 5e-3 and config.refine.optim.lr_mlp == 2e-3
    assert load_config(Text3DConfig).refine == load_config(Text3DConfig, None, ["refine.enabled=false"]).refine


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


def leaves(data: dict, prefix: str = "") -> dict:
    """A nested mapping's leaves by dotted key."""
    found = {}
    for key, value in data.items():
        found.update(leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return found


def test_presets_inherit_from_their_base_and_hold_only_what_differs():
    import yaml

    from dreamlift.config import PRESET_DIR, to_dict

    for name in preset_names():
        if name != "dreamfusion":
            raw = yaml.safe_load((PRESET_DIR / f"{name}.yaml").read_text())
            base = leaves(to_dict(load_config(Text3DConfig, raw.pop("base"))))
            same = {key: value for key, value in leaves(raw).items() if base.get(key) == value}
            assert same == {}, f"{name} repeats its base's values: {same}"
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


def test_a_config_file_that_is_not_utf8_or_cannot_be_read_is_a_usage_error(tmp_path, monkeypatch):
    from pathlib import Path

    from dreamlift.text3d.config import read_run_config

    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe seed: 1")
    with pytest.raises(UsageError, match=f"config file {bad} is not UTF-8 text"):
        load_config(Text3DConfig, str(bad))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_bytes(b"prompt: caf\xe9\n")  # Latin-1, not UTF-8
    with pytest.raises(UsageError, match="config.yaml is not UTF-8 text"):
        read_run_config(run)
    (tmp_path / "good.yaml").write_text("seed: 1\n")

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(UsageError, match="cannot read config file .*good.yaml: Permission denied"):
        load_config(Text3DConfig, str(tmp_path / "good.yaml"))


def test_a_relative_base_is_found_from_the_preset_s_own_folder(tmp_path, monkeypatch):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "parent.yaml").write_text("base: dreamfusion\ntrain:\n  steps: 7\nguidance:\n  scale: 30\n")
    (sub / "child.yaml").write_text("base: parent.yaml\nguidance:\n  scale: 40\n")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "grandchild.yaml").write_text("base: ../sub/child.yaml\nseed: 5\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "parent.yaml").write_text("train:\n  steps: 99\n")  # the working folder's is not the one meant
    (elsewhere / "dreamfusion").write_text("nonsense: 1\n")  # a bare base is a shipped preset's name, not a file
    monkeypatch.chdir(elsewhere)
    config = load_config(Text3DConfig, str(tmp_path / "nested" / "grandchild.yaml"))
    assert config.seed == 5 and config.train.steps == 7 and config.guidance.scale == 40.0
    assert config.guidance.t_max_final == 0.5  # from the shipped dreamfusion preset
    (sub / "orphan.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(UsageError, match=f"config file not found: {sub / 'missing.yaml'}"):
        load_config(Text3DConfig, str(sub / "orphan.yaml"))
    (sub / "typo.yaml").write_text("base: dreamfusoin\n")
    with pytest.raises(UsageError, match="unknown config preset 'dreamfusoin'"):
        load_config(Text3DConfig, str(sub / "typo.yaml"))


SEEDED_CONFIGS = [
    "dreamlift.text3d.config:Text3DConfig",
    "dreamlift.video.config:Text2VideoConfig",
    "dreamlift.embedded.train:TrainPriorConfig",
    "dreamlift.video.train:TrainMotionConfig",
]


@pytest.mark.parametrize("path", SEEDED_CONFIGS)
def test_every_seed_is_bounded_so_derived_seeds_fit_torch(path):
    import importlib

    from dreamlift.runtime import SEED_LIMIT

    module, name = path.split(":")
    cls = getattr(importlib.import_module(module), name)
    assert load_config(cls, None, [f"seed={SEED_LIMIT - 1}"]).seed == SEED_LIMIT - 1
    for seed in ("99999999999999999999", str(SEED_LIMIT), "-1"):
        with pytest.raises(UsageError, match="seed must be"):
            load_config(cls, None, [f"seed={seed}"])
    with pytest.raises(UsageError, match=f"seed must be a whole number between 0 and {SEED_LIMIT - 1}"):
        cls(seed=2**63)
