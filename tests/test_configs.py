"""Every bundled config validates (the real-data ones cannot run here, but must not rot)."""

from pathlib import Path

import pytest

from prefshift.study.config import BUNDLED, load_config

CONFIGS = sorted(p for p in BUNDLED.glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_bundled_config_validates(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.objectives and cfg.source and cfg.targets


def test_configs_found() -> None:
    assert {"quick", "demo", "rounds-quick", "robustness-quick", "tldr-cnndm", "hh-shp"} <= {p.stem for p in CONFIGS}
