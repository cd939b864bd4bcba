"""GPX 1.1 in and out (https://www.topografix.com/GPX/1/1/): the track points of a GPX file,
and a patrol as a GPX track. No network, no entities: a document type declaration is refused
before parsing (XML entity expansion is the classic attack on XML uploads)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from gis_service.errors import Invalid, UnsupportedMediaType
from gis_service.instants import parse_instant

GPX_NS = ("http://www.topografix.com/GPX/1/1", "http://www.topografix.com/GPX/1/0")
MEDIA_TYPE = "application/gpx+xml"


@dataclass(frozen=True)
class GpxTrack:
    """The points of a GPX file's tracks, in file order: (lon, lat, epoch seconds)."""

    points: list[tuple[float, float, float]]
    name: str | None


def _local(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


def not_gpx(reason: str) -> Invalid:
    """The error for a file that is no GPX track."""
    return Invalid(
        f"The upload is not a GPX track: {reason}. Send a GPX 1.1 (or 1.0) file with <trk> "
        "<trkseg> <trkpt lat=… lon=…><time>…</time></trkpt>.",
        code="not_gpx",
    )


def parse(data: bytes, max_points: int) -> GpxTrack:
    """Every <trkpt> of every <trk>/<trkseg>, in file order; 415/422 with the reason."""
    if not data.strip():
        raise not_gpx("the file is empty")
    if b"\x00" in data:
        raise not_gpx("it holds NUL bytes (a binary file?)")
    head = data[:4096].lstrip()
    if not head.startswith(b"<"):
        raise UnsupportedMediaType(
            "The upload is not XML, so not GPX. Send a .gpx file.", code="not_gpx"
        )
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise not_gpx("it declares a document type or entities, which GPX never needs")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise not_gpx(f"the XML is malformed ({exc})") from None
    ns, local = _local(root.tag)
    if local != "gpx" or (ns is not None and ns not in GPX_NS):
        raise not_gpx(f"its root element is <{local}>, not <gpx>")
    points: list[tuple[float, float, float]] = []
    name = None
    for trk in root:
        if _local(trk.tag)[1] != "trk":
            continue
        for child in trk:
            kind = _local(child.tag)[1]
            if kind == "name" and name is None and child.text:
                name = child.text.strip()[:200]
            if kind != "trkseg":
                continue
            for pt in child:
                if _local(pt.tag)[1] != "trkpt":
                    continue
                points.append(_point(pt, len(points)))
                if len(points) > max_points:
                    raise Invalid(
                        f"The track has more than {max_points:,} points; split it.",
                        code="too_many_points",
                        max_points=max_points,
                    )
    if not points:
        raise not_gpx(
            "it holds no <trk> with <trkpt> points (routes and waypoints are not patrol tracks)"
        )
    return GpxTrack(points, name)


def _point(pt: ET.Element, index: int) -> tuple[float, float, float]:
    try:
        lat = float(pt.attrib["lat"])
        lon = float(pt.attrib["lon"])
    except (KeyError, ValueError):
        raise not_gpx(f"track point {index} lacks a numeric lat or lon") from None
    stamp = next((c.text for c in pt if _local(c.tag)[1] == "time" and c.text), None)
    if stamp is None:
        raise Invalid(
            f"Track point {index} has no <time>; a patrol needs the time of every point.",
            code="gpx_without_times",
            point=index,
        )
    try:
        t = parse_instant(stamp.strip())
    except ValueError:
        raise Invalid(
            f"Track point {index} has the time {stamp.strip()[:40]!r}, not an ISO 8601 time.",
            code="gpx_bad_time",
            point=index,
        ) from None
    return lon, lat, t.timestamp()


def write(points: list[tuple[float, float, float]], name: str, description: str) -> str:
    """A GPX 1.1 document with one track of the points (WGS84 lon, lat, epoch seconds)."""
    rows = []
    for lon, lat, t in points:
        stamp = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        rows.append(f'      <trkpt lat="{lat:.7f}" lon="{lon:.7f}"><time>{stamp}</time></trkpt>')
    body = "\n".join(rows)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="gis-service" xmlns="http://www.topografix.com/GPX/1/1">\n'
        f"  <metadata><name>{escape(name)}</name><desc>{escape(description)}</desc></metadata>\n"
        f"  <trk>\n    <name>{escape(name)}</name>\n    <trkseg>\n{body}\n    </trkseg>\n"
        "  </trk>\n</gpx>\n"
    )
