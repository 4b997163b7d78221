"""Style is enforced, not suggested: ruff (config in pyproject.toml), snakefmt and Snakemake's own linter."""

import subprocess
import sys

from conftest import CONFIGS, ROOT


def run(*args, cwd=ROOT):
    return subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_ruff_passes():
    out = run(sys.executable, "-m", "ruff", "check", ".")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_snakefmt_leaves_the_workflow_unchanged():
    out = run(sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_snakemake_lint_is_clean(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text((CONFIGS / "sgd_phase_diagram.yaml").read_text() + f"results: {tmp_path / 'results'}\n")
    out = run(sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--configfile",
              str(config), "--lint", cwd=tmp_path)
    assert out.returncode == 0 and "Congratulations, your workflow is in a good condition" in out.stdout + out.stderr, \
        out.stdout[-4000:] + out.stderr[-2000:]
