"""Manifests (one CSV per set: file, duration, source package and path, licence) and licence look-up.

Licences come from each package's ``usr/share/doc/<package>/copyright``. Most are in Debian's
machine-readable format (DEP-5), whose ``Files:`` globs name paths in the *source* tree, not
the installed one; ``licence_for`` matches them against the installed path's trailing
components, which is a best-effort mapping. The full copyright file of every package used is
copied beside the data (``licences/<package>.copyright``) and named in each manifest row.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, fields
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path

from common.atomic import atomic_write_text
from common.errors import UserError

# Fallback for copyright files that are not DEP-5: the first of these phrases found names the licence.
LICENCE_PHRASES = (
    ("GNU General Public License version 3", "GPL-3"),
    ("GNU General Public License version 2", "GPL-2"),
    ("GNU General Public License", "GPL"),
    ("Creative Commons Attribution-ShareAlike", "CC-BY-SA"),
    ("Creative Commons Attribution", "CC-BY"),
    ("CC0", "CC0"),
    ("MIT license", "MIT"),  # before public domain: fluid-soundfont-gm is MIT, made partly of public-domain samples
    ("public domain", "public-domain"),
)


@dataclass
class ManifestRow:
    """One file of a set. ``file`` is relative to the set's folder; ``seconds`` at the set's sample rate."""

    file: str
    seconds: float
    package: str  # source Debian package, or "generated" for simulated/mixed audio
    package_version: str
    source_path: str  # path inside the package ("a.pk3.d/x.ogg" for archive members), or how it was made
    channel: str  # "mix" (all channels averaged), or the kept channel index
    licence: str
    licence_file: str  # relative to the build's output folder
    sha1: str  # of the 16-bit samples, as written


FIELDNAMES = [field.name for field in fields(ManifestRow)]


def write_manifest(path: Path, rows: list[ManifestRow]) -> None:
    """Write ``rows`` as CSV (header = ManifestRow fields), atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDNAMES, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record = asdict(row)
        record["seconds"] = f"{row.seconds:.3f}"
        writer.writerow(record)
    atomic_write_text(path, buffer.getvalue())


def read_manifest(path: Path) -> list[ManifestRow]:
    """Rows of a manifest written by ``write_manifest``; raises UserError naming the file if malformed."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != FIELDNAMES:
                raise UserError(f"{path}: not a manifest (columns {reader.fieldnames}, expected {FIELDNAMES})")
            return [ManifestRow(**{**record, "seconds": float(record["seconds"])}) for record in reader]
    except (OSError, ValueError, TypeError) as error:
        raise UserError(f"{path}: cannot read manifest ({error})") from None


@dataclass(frozen=True)
class LicenceStanza:
    patterns: tuple[str, ...]
    licence: str


@lru_cache(maxsize=256)
def parse_copyright(path: Path) -> tuple[tuple[LicenceStanza, ...], str]:
    """(DEP-5 Files stanzas in file order, fallback licence) of a Debian copyright file."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    stanzas = []
    for paragraph in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", paragraph, flags=re.MULTILINE)
        licence = re.search(r"^License:[ \t]*(\S.*)$", paragraph, flags=re.MULTILINE)
        if files and licence:
            stanzas.append(LicenceStanza(tuple(files.group(1).split()), licence.group(1).strip()))
    fallback = next((name for phrase, name in LICENCE_PHRASES if phrase.lower() in text.lower()), "see copyright file")
    catch_all = [stanza.licence for stanza in stanzas if "*" in stanza.patterns]
    return tuple(stanzas), (catch_all[-1] if catch_all else fallback)


def _match_depth(installed: str, pattern: str) -> int:
    """How many trailing path components of ``installed`` a DEP-5 pattern matches (0 = no match).

    Source-tree prefixes ('data/', 'debian/') are dropped one at a time, because packages install
    ``data/music/x.ogg`` as ``usr/share/games/<name>/music/x.ogg``.
    """
    if pattern in ("*", ""):
        return 0
    installed_parts = installed.split("/")
    pattern_parts = pattern.strip("/").split("/")
    for start in range(len(pattern_parts)):
        tail = pattern_parts[start:]
        if len(tail) > len(installed_parts):
            continue
        candidate = "/".join(installed_parts[-len(tail) :])
        if fnmatchcase(candidate, "/".join(tail)) and not (len(tail) == 1 and tail[0].startswith("*")):
            return len(tail)
    return 0


def licence_for(copyright_file: Path | None, installed_path: str) -> str:
    """Best-effort licence short name of ``installed_path`` from a Debian copyright file."""
    if copyright_file is None or not Path(copyright_file).exists():
        return "unknown (no copyright file)"
    stanzas, fallback = parse_copyright(Path(copyright_file))
    best_depth, best = 0, fallback
    for stanza in stanzas:
        depth = max((_match_depth(installed_path, pattern) for pattern in stanza.patterns), default=0)
        if depth and depth >= best_depth:  # DEP-5: later stanzas override earlier ones
            best_depth, best = depth, stanza.licence
    return best


def copyright_file(extracted: Path, package: str) -> Path | None:
    """The package's copyright file inside its extracted folder, or None."""
    for name in ("copyright", "COPYING", "LICENSE"):
        path = Path(extracted) / "usr" / "share" / "doc" / package / name
        if path.exists():
            return path
    return None
