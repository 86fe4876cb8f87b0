"""What `pip install` of drip puts on a machine: one package, `drip`, that lives beside the PyPI
distributions whose import names drip's modules once took (`emails`, `ratelimit`, `config`)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
while not (ROOT / "pyproject.toml").exists():
    ROOT = ROOT.parent
NEIGHBOURS = ["emails", "ratelimit", "config"]


def _run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, **kwargs
    )


def test_the_wheel_installs_one_package_that_works_beside_its_namesakes(tmp_path: Path) -> None:
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "whl",
                 ROOT)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "whl").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {name.split("/")[0] for name in names}
    assert {"drip/web/static/drip.css", "drip/web/static/timezone.js"} <= names, "the pages' assets"
    assert {"drip/web/static/admin.css", "drip/web/templates/admin/login.html",
            "drip/web/admin/__init__.py"} <= names, "the console"  # fmt: skip
    assert {t for t in tops if not t.endswith(".dist-info")} == {"drip"}
    assert wheel.name.startswith("drip_courses-")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    installed = _run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                     wheel, *NEIGHBOURS)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    for name in NEIGHBOURS:  # the namesakes are theirs, not drip's
        origin = _run(python, "-c", f"import {name}; print({name}.__file__)", cwd=tmp_path)
        assert origin.returncode == 0 and "site-packages" in origin.stdout, origin.stderr

    env = {**os.environ, "DRIP_DATABASE_URL": f"sqlite:///{tmp_path / 'drip.db'}",
           "DRIP_OUTBOX_DIR": str(tmp_path / "outbox")}  # fmt: skip
    env.pop("DRIP_SMTP_URL", None)
    drip = env_dir / "bin" / "drip"
    for args in (["check"], ["init"],
                 ["subscribe", "ana@example.com", "--course", "bone-health", "--confirmed"],
                 ["tick"]):  # fmt: skip
        done = _run(drip, *args, cwd=tmp_path, env=env)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
