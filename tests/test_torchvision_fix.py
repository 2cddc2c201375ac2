import subprocess
import sys


def test_torchvision_fix_acts_only_when_torchvision_fails_on_its_own():
    code = ("import importlib, sys\n"
            "try:\n    import torchvision; broken = False\n"
            "except RuntimeError as e:\n    broken = 'torchvision::nms' in str(e)\n"
            "for m in [m for m in sys.modules if m.startswith('torchvision')]: del sys.modules[m]\n"
            "from headstart._torchvision_fix import ensure_torchvision_importable\n"
            "applied = ensure_torchvision_importable()\n"
            "import timm, torchvision.transforms\n"
            "print(applied == broken)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("True")
