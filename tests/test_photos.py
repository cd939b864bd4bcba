"""The cost of accepting photos is bounded before they are decoded (issue 11, finding 5).

Five PNGs of 7,745 × 7,745 (a 1.17 MB upload, anonymous) used to take 8.3 s and 1.2 GB to
accept. The pixels of one photo and of one request's photos are bounded from the headers
alone, and JPEGs decode at a reduced scale, so a request cannot take a gigabyte. Memory is
measured in a fresh process (its peak resident set), where nothing else has run before.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.support.databases import Databases
from tests.support.hazard_world import World, build_world

# 7,745² ≈ 60 million pixels: just under the per-photo limit of the stored image.
SIDE = 7745


def flat_png(width: int, height: int) -> bytes:
    """A valid PNG of one colour, compressed row by row (never held decoded here)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    squeeze = zlib.compressobj(9)
    row = b"\x00" + b"\x80" * (width * 3)
    idat = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def world(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(databases, tmp_path_factory.mktemp("photos"), "hphoto") as w:
        yield w


def test_five_huge_pngs_are_refused_before_decoding(world: World) -> None:
    png = flat_png(SIDE, SIDE)
    files = [("photos", (f"p{i}.png", png, "image/png")) for i in range(5)]
    data = {"category": "clutter", "lon": "113.603", "lat": "34.703", "description": "大图"}
    r = world.client.post("/api/v1/hazards", data=data, files=files)
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "photo_too_large"


_MEASURE = """
import json, resource, sys
from pathlib import Path
from gis_service.config import Settings
from gis_service.errors import DomainError
from gis_service.hazards.photos import Upload, validate_all
uploads = [Upload(p.name, p.read_bytes()) for p in map(Path, sys.argv[1:])]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    photos = validate_all(uploads, Settings(database_url="postgresql://x@/x"))
    outcome = [[p.width, p.height, len(p.public)] for p in photos]
except DomainError as exc:
    outcome = exc.code
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcome": outcome, "grew_mb": (after - before) / 1024}))
"""


def _peak(paths: list[Path]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def test_photo_memory_is_bounded(tmp_path: Path) -> None:
    """Five huge PNGs: refused having decoded nothing. Three 48-megapixel JPEGs: accepted,
    each decoded at half scale for its public copy, well under 200 MB at the peak."""
    png = tmp_path / "big.png"
    png.write_bytes(flat_png(SIDE, SIDE))
    refused = _peak([png] * 5)
    assert refused["outcome"] == "photo_too_large"
    assert refused["grew_mb"] < 50, refused
    jpeg = tmp_path / "big.jpg"
    Image.new("RGB", (8000, 6000), "steelblue").save(jpeg, "JPEG", quality=70)
    accepted = _peak([jpeg] * 3)
    assert [w_h[:2] for w_h in accepted["outcome"]] == [[8000, 6000]] * 3
    assert accepted["grew_mb"] < 200, accepted
