"""Settings from defaults, an optional TOML file and RSCHAT_* environment variables."""

from pathlib import Path

from rschat.config import Settings, load_settings


def test_defaults_are_lite_mode():
    st = load_settings({})
    assert st == Settings(work_dir=st.work_dir) and not (st.vlm or st.sam or st.clip or st.generator)


def test_toml_then_environment(tmp_path: Path):
    toml = tmp_path / "rschat.toml"
    toml.write_text('vlm = "checkpoints/qwen2.5-vl-3b"\nvlm_quant = "8bit"\nmax_pixels = 1000\nunknown = 1\n')
    st = load_settings({"RSCHAT_CONFIG": str(toml), "RSCHAT_VLM_QUANT": "4bit", "RSCHAT_WORK_DIR": str(tmp_path)})
    assert st.vlm == "checkpoints/qwen2.5-vl-3b" and st.vlm_quant == "4bit"  # the environment wins
    assert st.max_pixels == 1000 and st.work_dir == tmp_path
