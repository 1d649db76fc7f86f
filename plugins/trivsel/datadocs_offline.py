"""Great Expectations Data Docs that work without the internet.

GX's pages load jQuery, Bootstrap, bootstrap-table, vega and Font Awesome from CDNs; offline the index is
blank (its table is filled in by bootstrap-table). GX ships none of them, so this rewrites every page of a
built site to local copies: jQuery and Bootstrap from packages already installed (Flower, in the lock as a
dependency of the Celery provider; Debian's libjs-jquery as a fallback), and templates/datadocs/offline.js
for the parts nothing local provides (a plain-table bootstrapTable, a vegaEmbed that says the chart needs
the network). A CDN reference with no local stand-in is removed, never left to hang; GX's logo (an S3 image
whose URL carries the data context's id) becomes text. Links to GX's website stay links.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

SHIM = Path(__file__).resolve().parent / "templates" / "datadocs" / "offline.js"
VENDOR = "static/vendor"
_TAG = re.compile(r"""<(script|link|img)\b[^>]*?\b(?:src|href)\s*=\s*["'](https?://[^"']+)["'][^>]*>(?:\s*</script>)?""",
                  re.I)
#: GX's logo is an image on S3 whose URL carries the data context's id: a network call (and a tracking pixel)
LOGO = '<span class="trivsel-offline-logo">Great Expectations Data Docs</span>'


def _flower_static() -> Path | None:
    spec = importlib.util.find_spec("flower")
    if spec is None or not spec.origin:
        return None
    static = Path(spec.origin).parent / "static"
    return static if static.is_dir() else None


def vendor_sources() -> dict[str, Path]:
    """Local file of each asset kind (jquery, bootstrap_css, bootstrap_js), from installed packages."""
    found: dict[str, Path] = {}
    static = _flower_static()
    if static:
        for kind, pattern in (("jquery", "js/jquery-*.min.js"), ("bootstrap_css", "css/bootstrap.min.css"),
                              ("bootstrap_js", "js/bootstrap.bundle.min.js")):
            hit = sorted(static.glob(pattern))
            if hit:
                found[kind] = hit[-1]
    debian = Path("/usr/share/javascript/jquery/jquery.min.js")
    if "jquery" not in found and debian.exists():
        found["jquery"] = debian
    return found


def _kind(url: str) -> str | None:
    name = url.rsplit("/", 1)[-1].lower()
    if "jquery" in name:
        return "jquery"
    if "bootstrap-table" in url or "datepicker" in url or "bootstrap-dark" in url or "bootstrap-prefers" in name:
        return None
    if name.startswith("bootstrap") and name.endswith(".css"):
        return "bootstrap_css"
    if name.startswith("bootstrap") and name.endswith(".js"):
        return "bootstrap_js"
    return None


def localise(site: Path) -> dict[str, int]:
    """Copy the local assets into `site`/static/vendor and point every page at them; returns counts of
    references replaced and removed. Idempotent."""
    vendor = site / VENDOR
    vendor.mkdir(parents=True, exist_ok=True)
    local: dict[str, str] = {}
    for kind, src in vendor_sources().items():
        shutil.copyfile(src, vendor / src.name)
        local[kind] = src.name
    shutil.copyfile(SHIM, vendor / SHIM.name)
    counts = {"replaced": 0, "removed": 0, "pages": 0}
    for page in site.rglob("*.html"):
        rel = Path(os.path.relpath(vendor, page.parent)).as_posix()
        text = page.read_text(encoding="utf-8")

        def swap(m: re.Match, rel: str = rel) -> str:
            tag, url = m.group(1).lower(), m.group(2)
            if tag == "img":
                counts["removed"] += 1
                return LOGO
            kind = _kind(url)
            if kind in local:
                counts["replaced"] += 1
                path = f"{rel}/{local[kind]}"
                if tag == "link":
                    return f'<link rel="stylesheet" href="{path}"/>'
                out = f'<script src="{path}"></script>'
                if kind == "jquery":  # the stand-ins need jQuery and must exist before the pages' own scripts
                    out += f'<script src="{rel}/{SHIM.name}"></script>'
                return out
            counts["removed"] += 1
            return ""

        new = _TAG.sub(swap, text)
        if new != text:
            page.write_text(new, encoding="utf-8")
            counts["pages"] += 1
    return counts
