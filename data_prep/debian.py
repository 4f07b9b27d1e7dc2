"""Download Debian packages with ``apt-get download`` and extract their audio and licence files.

Nothing here needs root except the one-off ``apt-get update`` on a machine whose apt lists are
empty. Downloads land in ``<cache>/debs`` and extractions in ``<cache>/extracted/<package>``;
both are shared between configs and reused on later runs.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path

from common.audio import AUDIO_EXTENSIONS
from common.errors import UserError

APT_LISTS = Path("/var/lib/apt/lists")
# Marker written after an extraction finished; a folder without it is incomplete and redone.
COMPLETE_MARKER = ".extracted"
# Zip archives (Quake-style .pk3 game data) that hold audio, expanded beside the archive.
ARCHIVE_SUFFIXES = (".pk3", ".zip")
LICENCE_NAMES = ("copyright", "license", "licence", "copying")


class PackageUnavailable(UserError):
    """A package that cannot be downloaded or extracted; the message names it and says why."""


def apt_lists_present(lists_dir: Path = APT_LISTS) -> bool:
    """True when apt has package lists (``apt-get download`` needs them)."""
    return lists_dir.is_dir() and any(
        name.endswith(("_Packages", ".lz4", "Packages.xz")) for name in os.listdir(lists_dir)
    )


def ensure_apt_lists(lists_dir: Path = APT_LISTS) -> str | None:
    """Make sure apt knows the packages: run ``apt-get update`` when the lists are empty and we are root.

    Returns None when the lists are usable, else a one-line instruction for the user.
    """
    if apt_lists_present(lists_dir):
        return None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        result = subprocess.run(["apt-get", "update"], capture_output=True, text=True)
        if result.returncode == 0 and apt_lists_present(lists_dir):
            return None
        return f"'apt-get update' failed: {(result.stderr or result.stdout).strip().splitlines()[-1:]}"
    return "apt's package lists are empty; run once as root: sudo apt-get update"


def find_deb(package: str, debs_dir: Path) -> Path | None:
    """The cached .deb of ``package`` (file names are ``<package>_<version>_<arch>.deb``), or None."""
    matches = sorted(debs_dir.glob(f"{package}_*.deb"))
    return matches[-1] if matches else None


def download_package(package: str, debs_dir: Path) -> Path:
    """Return the path of ``package``'s .deb in ``debs_dir``, downloading it with apt-get when missing.

    The download goes to a temporary folder first and is moved in when complete, so an interrupted
    download never leaves a truncated .deb in the cache. Raises PackageUnavailable.
    """
    debs_dir = Path(debs_dir)
    cached = find_deb(package, debs_dir)
    if cached is not None:
        return cached
    if shutil.which("apt-get") is None:
        raise PackageUnavailable(f"{package}: apt-get not found (not a Debian-based system?)")
    debs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".download-{package}-", dir=debs_dir) as tmp:
        # apt's sandbox user cannot write to our folder; it falls back to the caller and warns.
        result = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
        debs = sorted(Path(tmp).glob("*.deb"))
        if result.returncode != 0 or not debs:
            lines = [line for line in (result.stderr or result.stdout).splitlines() if line.startswith("E:")]
            reason = lines[0] if lines else f"apt-get exited with status {result.returncode}"
            raise PackageUnavailable(f"{package}: cannot download ({reason})")
        target = debs_dir / debs[0].name
        os.replace(debs[0], target)
    return target


def _wanted_member(name: str) -> bool:
    lower = name.lower()
    if lower.endswith(".gz"):
        lower = lower[:-3]
    return (
        lower.endswith(AUDIO_EXTENSIONS)
        or lower.endswith(ARCHIVE_SUFFIXES)
        or ("/usr/share/doc/" in f"/{lower.lstrip('./')}" and Path(lower).name in LICENCE_NAMES)
    )


def _expand_archive(archive: Path) -> int:
    """Extract the audio members of a zip/pk3 into a folder named like the archive; returns the count."""
    target = archive.with_name(archive.name + ".d")
    count = 0
    try:
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.infolist():
                name = member.filename
                if member.is_dir() or not name.lower().endswith(AUDIO_EXTENSIONS):
                    continue
                destination = (target / name).resolve()
                if target.resolve() not in destination.parents:  # refuse '../' tricks in member names
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(member) as source, open(destination, "wb") as sink:
                    shutil.copyfileobj(source, sink)
                count += 1
    except zipfile.BadZipFile:
        return 0
    finally:
        archive.unlink()  # the archive itself is not audio; keep only its expanded members
    return count


def extract_package(deb: Path, extracted_root: Path, package: str) -> Path:
    """Extract the audio and licence files of ``deb`` into ``extracted_root/<package>``; returns that folder.

    Audio inside .pk3/.zip archives is expanded into ``<archive>.d/``; gzip-compressed audio
    (``x.wav.gz``) is decompressed to ``x.wav``. The folder is built under a temporary name and
    renamed when complete, so it is either absent or whole. Reuses a complete earlier extraction.
    """
    target = Path(extracted_root) / package
    if (target / COMPLETE_MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{package}.", dir=target.parent))
    try:
        # dpkg-deb streams the data tarball whatever its compression; tarfile filters members in-process.
        process = subprocess.Popen(
            ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        tar_error = None
        try:
            with tarfile.open(fileobj=process.stdout, mode="r|") as tar:
                for member in tar:
                    if not member.isfile() or not _wanted_member(member.name):
                        continue
                    relative = Path(member.name.lstrip("./"))
                    if ".." in relative.parts:
                        continue
                    destination = work / relative
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as source, open(destination, "wb") as sink:
                        shutil.copyfileobj(source, sink)
        except tarfile.TarError as error:
            tar_error = error
        finally:
            process.stdout.close()  # an early exit must not leave dpkg-deb blocked on a full pipe
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            status = process.wait()
        if status != 0 or tar_error is not None:
            reason = (stderr.strip().splitlines() or [str(tar_error) or f"exit status {status}"])[-1]
            raise PackageUnavailable(f"{deb}: dpkg-deb failed ({reason}); delete the file to download it again")
        for path in sorted(work.rglob("*")):
            if path.is_file() and path.suffix.lower() in ARCHIVE_SUFFIXES:
                _expand_archive(path)
            elif path.is_file() and path.name.lower().endswith(tuple(ext + ".gz" for ext in AUDIO_EXTENSIONS)):
                with gzip.open(path, "rb") as source, open(path.with_suffix(""), "wb") as sink:
                    shutil.copyfileobj(source, sink)
                path.unlink()
        (work / COMPLETE_MARKER).write_text(deb.name + "\n", encoding="utf-8")
        if (target / COMPLETE_MARKER).exists():  # a concurrent build (another config) finished first
            shutil.rmtree(work)
            return target
        if target.exists():  # an incomplete earlier attempt
            shutil.rmtree(target)
        os.replace(work, target)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(work)
        raise
    return target


def package_version(extracted: Path) -> str:
    """The version recorded by ``extract_package`` (from the .deb file name), or ''."""
    marker = Path(extracted) / COMPLETE_MARKER
    if not marker.exists():
        return ""
    parts = marker.read_text(encoding="utf-8").strip().split("_")
    return parts[1].replace("%3a", ":") if len(parts) >= 3 else ""


def fetch_package(package: str, cache_dir: Path) -> Path:
    """Download (if needed) and extract (if needed) ``package``; returns its extracted folder.

    A package already extracted in the cache needs neither apt nor its .deb (tests and offline
    reruns rely on that). Raises PackageUnavailable.
    """
    extracted = Path(cache_dir) / "extracted" / package
    if (extracted / COMPLETE_MARKER).exists():
        return extracted
    deb = download_package(package, Path(cache_dir) / "debs")
    return extract_package(deb, Path(cache_dir) / "extracted", package)
