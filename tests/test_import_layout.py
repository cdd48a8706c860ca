"""The repository's fhir/ folder must never hide the fhir.resources library."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_fhir_resources_and_telekol_fhir_both_import_from_the_repository_root():
    code = "import fhir.resources, telekol.fhir.codes; print(fhir.resources.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "site-packages" in done.stdout.strip()


def test_the_fhir_folder_has_no_init_file():
    assert (ROOT / "fhir").is_dir()
    assert not (ROOT / "fhir" / "__init__.py").exists()
