import subprocess
import sys


def test_doctor_lists_backends_and_auto_choice():
    proc = subprocess.run([sys.executable, "-m", "lipforge.cli", "doctor"], capture_output=True, text=True,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    row = lambda name: next(line for line in lines if f" {name} " in line)  # noqa: E731
    assert "present (auto)" in row("dlib")  # no face-alignment weights offline
    assert "absent" in row("face_alignment") and "s3fd-619a316812.pth" in row("face_alignment")
    assert "present (auto)" in row("pocketsphinx") and "absent" in row("mfa")
    assert "vgg19-dcbb9e9d.pth" in row("vgg19")
    # what a generator's `precision: auto` becomes on this CPU, as the training workers resolve it
    import torch

    from lipforge.train.precision import resolve_precision

    assert f"precision auto -> {resolve_precision('auto', torch.device('cpu'))}" in row("cpu")
