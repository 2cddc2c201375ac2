import pytest

from headstart.errors import ConfigError, UnknownNameError
from headstart.registry import Registry
from headstart.strategies import STRATEGIES


def test_registry_duplicate_name_raises():
    registry = Registry("widget")
    registry.register("a", 1)
    with pytest.raises(ConfigError, match="widget 'a' is already registered"):
        registry.register("a", 2)


def test_registry_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError, match=r"unknown strategy 'fine_tune'\. Did you mean 'finetune'\?"):
        STRATEGIES.get("fine_tune")


def test_importing_headstart_changes_no_global_state():
    import subprocess
    import sys

    code = ("import sys, torch; before = (torch.get_num_threads(), torch.get_default_dtype(), "
            "'torchvision' in sys.modules); import headstart, headstart.strategies, headstart.backbones; "
            "after = (torch.get_num_threads(), torch.get_default_dtype(), 'torchvision' in sys.modules); "
            "print(before == after)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
