"""`prefect deploy` imports every flow module: none of them may load TensorFlow at import time."""

import subprocess
import sys

import yaml

from tests.shared_data import REPO_ROOT


def test_flow_entrypoints_do_not_import_tensorflow():
    deployments = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]
    modules = sorted({d["entrypoint"].split(":")[0] for d in deployments})  # module entrypoints
    modules += ["ecgmon.cli.main", "ecgmon.flows.train", "ecgmon.flows.demo", "ecgmon.flows.replay"]
    code = (
        "import sys\n"
        f"for m in {modules!r}: __import__(m)\n"
        "print(sorted(k for k in ('tensorflow', 'keras') if k in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_score_flow_and_the_command_line_import_no_heavy_library():
    """A score run with nothing new pays for none of them: Keras loads when a beat needs the
    autoencoder, matplotlib when a picture is drawn, and NeuroKit2 is not used to score."""
    heavy = ("tensorflow", "keras", "matplotlib", "neurokit2")
    code = (
        "import sys\n"
        "import ecgmon.cli.main, ecgmon.flows.score\n"
        f"print(sorted(k for k in {heavy!r} if k in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
