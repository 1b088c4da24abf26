"""Debian packages as offline data: photos and photo cut-outs that the benchmarks build their worlds from.

A package is fetched once with `apt-get download` (the registry this machine reaches), checked against
the sha256 recorded when it was chosen, and unpacked with `dpkg-deb -x` into a cache folder named by
package and version. The unpacked folder appears whole or not at all (unpacked beside it, then renamed),
so an interrupted fetch is redone by the next call. Nothing of the packages is committed.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import PsslError

DEFAULT_CACHE = "~/.cache/pssl/debian"


class DebianPackageError(PsslError):
    """A package that could not be fetched, or is not the bytes that were chosen."""


@dataclass(frozen=True)
class DebianPackage:
    name: str
    version: str
    sha256: str


# The packages the benchmarks read (versions of Debian 12 "bookworm"; the sha256 of the .deb file).
TUXPAINT_STAMPS = DebianPackage("tuxpaint-stamps-default", "2022.06.04-1",
                                "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34")
OPENCV_DOC = DebianPackage("opencv-doc", "4.6.0+dfsg-12",
                           "4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a")
# Photo wallpapers, Tux Paint's photo templates, puzzles and manuals' examples: the backgrounds of the composite
# world (benchmarks/composite) and the photos of the real-photo development set (benchmarks/real_photos).
LOMIRI_WALLPAPERS_1604 = DebianPackage("lomiri-wallpapers-16.04", "20.04.0-2",
                                       "a99ff6a3bfe451e4cc0682ecb3cc82e71740626d59e4845ae34a0a0e45421eab")
LOMIRI_WALLPAPERS_2004 = DebianPackage("lomiri-wallpapers-20.04", "20.04.0-2",
                                       "d44e89b8473aafe64a5b678f014862dc31335aaaf18665c544d985d854f1a709")
PALAPELI_DATA = DebianPackage("palapeli-data", "4:22.12.3-1",
                              "69a15dce2ac25ed8708ac518cd0cee5f4eb0c70ed15da2fdb8899a19ac0ee058")
TUXPAINT_DATA = DebianPackage("tuxpaint-data", "1:0.9.28-sdl2-1",
                              "f5d0de8f9a70d2efc1241d19f26168cb8bf279f1b77abd3631e7a1a55c40e5e5")
MATE_BACKGROUNDS = DebianPackage("mate-backgrounds", "1.26.0-1",
                                 "7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04")
PLASMA_WALLPAPERS = DebianPackage("plasma-workspace-wallpapers", "4:5.27.5-2",
                                  "32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b")
GIMP_HELP_EN = DebianPackage("gimp-help-en", "2.10.34-2",
                             "a2deec76763aaf2fcdd197bac0736cdcb0770ba993d48d233329e1c92b0bfe36")
LIBVIPS_DOC = DebianPackage("libvips-doc", "8.14.1-3+deb12u3",
                            "16a75c257b4503524f163089ae151e1acc45b2531ce72880e58005c3f749be76")
SCRIBUS_TEMPLATE = DebianPackage("scribus-template", "1.2.4.1-6",
                                 "683bf35e43867cb17613d6807aa0238720d8526b1f524b9376404747a3e6128b")
HUGIN_DATA = DebianPackage("hugin-data", "2022.0.0+dfsg-2",
                           "0289091920be52eec91bf1ae6739a2dfe6c0075fc187daf3a39f765a8eab22e0")


def cache_root(cache: str | Path | None = None) -> Path:
    return Path(os.path.expanduser(str(cache or os.environ.get("PSSL_DEBIAN_CACHE", DEFAULT_CACHE))))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(command: list[str], cwd: Path, what: str) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise DebianPackageError(f"{what}: `{command[0]}` is not on this machine (a Debian system is needed)") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        hint = "; run `apt-get update` first" if "Unable to locate" in last or "Can't select" in last else ""
        raise DebianPackageError(f"{what}: {' '.join(command)} failed: {last}{hint}")


def unpacked(package: DebianPackage, cache: str | Path | None = None) -> Path:
    """The folder holding the package's files (`usr/share/...`), fetched and unpacked on first use."""
    root = cache_root(cache)
    target = root / f"{package.name}_{package.version}"
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as work:
        work = Path(work)
        what = f"Debian package {package.name} {package.version}"
        _run(["apt-get", "download", f"{package.name}={package.version}"], work, what)
        debs = sorted(work.glob("*.deb"))
        if len(debs) != 1:
            raise DebianPackageError(f"{what}: apt-get download left {len(debs)} .deb files in {work}")
        digest = _sha256(debs[0])
        if digest != package.sha256:
            raise DebianPackageError(f"{what}: sha256 {digest[:16]}... is not the recorded {package.sha256[:16]}...")
        _run(["dpkg-deb", "-x", str(debs[0]), str(work / "files")], work, what)
        (work / "files").replace(target)
    return target

