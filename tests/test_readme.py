"""The README's two commands are what a newcomer runs and what CI runs: keep them in sync."""
import re

from conftest import REPO_ROOT


def readme_commands():
    return re.findall(r"```bash\n(.*?)\n```", (REPO_ROOT / "README.md").read_text(), re.S)


def test_readme_starts_with_install_and_train_then_install_and_test():
    first, second = readme_commands()[:2]
    assert "constraints.txt" in first and "alae-train --config demo" in first
    assert "constraints.txt" in second and "pytest" in second


def test_ci_runs_the_readme_test_command_verbatim():
    ci_lines = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def test_constraints_pin_torch_and_torchvision():
    pins = (REPO_ROOT / "constraints.txt").read_text().split()
    assert "torch==2.14.1" in pins and "torchvision==0.29.1" in pins


def test_ci_installs_the_browser_of_the_studio_tests_first():
    ci_lines = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    browser = next(i for i, line in enumerate(ci_lines) if "apt-get install" in line)
    assert "chromium" in ci_lines[browser] and "chromium-driver" in ci_lines[browser]
    assert browser < ci_lines.index(readme_commands()[1])
