"""Assets fetched from the npm registry: tarball URL, extraction, hash check, cache, errors (a local registry)."""
import functools
import hashlib
import http.server
import io
import tarfile
import threading

import pytest

from lipforge import assets


def _npm_tarball(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"package/{member}")  # npm packs everything under package/
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A directory served over HTTP as an npm registry; yields (root dir, requested paths)."""
    root = tmp_path / "registry"
    root.mkdir()
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            requested.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("npm_config_registry", f"http://127.0.0.1:{server.server_port}/")
    monkeypatch.setenv("LIPFORGE_ASSET_CACHE", str(tmp_path / "cache"))
    yield root, requested
    server.shutdown()


def _publish(root, data: bytes, sha256: str, monkeypatch) -> None:
    (root / "@acme" / "faces" / "-").mkdir(parents=True)
    (root / "@acme" / "faces" / "-" / "faces-1.2.3.tgz").write_bytes(_npm_tarball("demo/a.jpg", data))
    monkeypatch.setitem(assets.ASSETS, "acme_a", assets.Asset("acme_a", "@acme/faces@1.2.3", "demo/a.jpg", sha256,
                                                             npm=True))


def test_npm_asset_is_fetched_once_from_the_registry_tarball(registry, monkeypatch):
    root, requested = registry
    data = b"not really a jpeg"
    _publish(root, data, hashlib.sha256(data).hexdigest(), monkeypatch)
    path = assets.fetch("acme_a")
    assert path.read_bytes() == data
    assert requested == ["/@acme/faces/-/faces-1.2.3.tgz"]
    assert assets.fetch("acme_a") == path and len(requested) == 1  # cached
    prov = assets.provenance("acme_a")
    assert prov["package"] == "@acme/faces@1.2.3" and prov["registry"] == "npm"
    assert prov["sha256"] == hashlib.sha256(data).hexdigest()


def test_npm_asset_with_a_changed_file_is_refused(registry, monkeypatch):
    root, _ = registry
    _publish(root, b"changed bytes", "0" * 64, monkeypatch)
    with pytest.raises(assets.AssetError, match="acme_a.*expected 0000"):
        assets.fetch("acme_a")


def test_unreachable_npm_registry_names_the_url_and_the_way_out(registry, monkeypatch):
    monkeypatch.setitem(assets.ASSETS, "acme_a", assets.Asset("acme_a", "@acme/missing@9.9.9", "demo/a.jpg", "",
                                                             npm=True))
    with pytest.raises(assets.AssetError, match="missing-9.9.9.tgz failed.*npm_config_registry"):
        assets.fetch("acme_a")
