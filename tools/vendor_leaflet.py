"""Vendor Leaflet into ``src/landforge/evaluation/assets/`` from the npm registry.

The report's interactive map embeds these files inline, so a report never fetches a
script, a style sheet or an image at view time. Run this only to change the pinned
version (``VERSION`` / ``INTEGRITY`` below, from ``npm view leaflet@X dist``); the
tarball's sha512 is checked against the registry's integrity string before anything is
written. Writes ``leaflet.js`` (without its source-map comment), ``leaflet.css`` (its
control images inlined as ``data:`` URIs, comments dropped) and ``LICENSE-leaflet.txt``.

    python tools/vendor_leaflet.py
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import sys
import tarfile
import urllib.request
from pathlib import Path

VERSION = "1.9.4"
INTEGRITY = (
    "sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA=="
)
URL = f"https://registry.npmjs.org/leaflet/-/leaflet-{VERSION}.tgz"
OUT = Path(__file__).resolve().parents[1] / "src" / "landforge" / "evaluation" / "assets"


def main() -> int:
    """Download, verify and write the assets."""
    data = urllib.request.urlopen(URL, timeout=60).read()  # noqa: S310 (a pinned https URL)
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != INTEGRITY:
        print(f"error: {URL}: sha512 {digest} does not match the pinned {INTEGRITY}")
        return 2
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:

        def read(name: str) -> bytes:
            member = tar.extractfile(f"package/{name}")
            assert member is not None, name
            return member.read()

        js = re.sub(rb"\n//# sourceMappingURL=\S+\s*$", b"\n", read("dist/leaflet.js"))
        css = read("dist/leaflet.css").decode()

        def inline(m: re.Match[str]) -> str:
            png = base64.b64encode(read(f"dist/{m.group(1)}")).decode()
            return f"url(data:image/png;base64,{png})"

        css = re.sub(r"url\((images/[\w.-]+\.png)\)", inline, css)
        css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)  # comments (links to bug trackers)
        licence = read("LICENSE")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "leaflet.js").write_bytes(js)
    (OUT / "leaflet.css").write_text(css)
    (OUT / "LICENSE-leaflet.txt").write_bytes(licence)
    (OUT / "leaflet.version").write_text(f"{VERSION} {INTEGRITY}\n")
    print(f"Leaflet {VERSION} written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
