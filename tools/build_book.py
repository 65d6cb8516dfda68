"""Build the book so that its pages work offline, then check that they do.

Usage: python tools/build_book.py [extra jupyter-book arguments]

1. Vendors the web assets that Jupyter Book would otherwise load from CDNs (MathJax 3,
   RequireJS and the Jupyter widget manager): `npm ci` in `vendor/` (versions pinned by
   `vendor/package-lock.json`), then copies what the pages need into `vendor/web/`, which
   `_config.yml` puts on Sphinx's static path (not a folder named `_static`: Jupyter Book
   injects every .js/.css found in such a folder into every page), and the widget manager's
   icon fonts into `vendor/extra/` (Sphinx's extra path: copied as they are).
2. Checks that the installed theme is the one `book/_templates/sections/header.html` patches
   (pydata-sphinx-theme 0.17.1 under sphinx-book-theme 1.3.0).
3. Runs `jupyter-book build . -W -n --keep-going` (warnings are errors).
4. Moves the frames of chapter 17's path gallery (hidden until a thumbnail opens a strip) out
   of the page into `_images/gallery/` and marks them `loading="lazy"`: the browser fetches a
   strip's frames when it is opened, not with the page (see `lazy_gallery`).
5. Fails if any built page still loads a script, stylesheet or font from another host.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "vendor"
WEB = VENDOR / "web"
EXTRA = VENDOR / "extra"
MODULES = VENDOR / "node_modules"
MATHJAX_PARTS = [
    "tex-mml-chtml.js",
    "output/chtml/fonts/woff-v2",
    "input/tex/extensions",
    "ui",
    "a11y",
    "sre",
    "adaptors",
]
# A load from another host: src= or href= of script/link tags (page links are fine).
EXTERNAL = re.compile(r"<(?:script|link)[^>]+(?:src|href)=\"(https?:)?//[^\"]+\"", re.I)


def vendor_assets() -> None:
    """Install the pinned npm packages and copy the needed files into vendor/web."""
    # axe-core is not copied into the book: tests/test_browser.py injects it into the pages.
    if not all((MODULES / name).is_dir() for name in ("mathjax", "axe-core")):
        npm = shutil.which("npm")
        if npm is None:
            sys.exit("npm is needed to vendor MathJax and the widget manager (apt install npm)")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=VENDOR, check=True
        )
    if WEB.exists():
        shutil.rmtree(WEB)
    mathjax = MODULES / "mathjax" / "es5"
    for part in MATHJAX_PARTS:
        src, dst = mathjax / part, WEB / "mathjax" / part
        if src.is_dir():
            shutil.copytree(src, dst)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    shutil.copy2(MODULES / "requirejs" / "require.js", WEB / "require.js")
    dist = MODULES / "@jupyter-widgets" / "html-manager" / "dist"
    shutil.copy2(dist / "embed-amd.js", WEB)
    # The widget manager's stylesheet loads its icon fonts from a path relative to the page
    # (`@jupyter-widgets/html-manager/dist/<hash>.woff2`): put them there for the chapters
    # (pages under book/) and the root, through Sphinx's html_extra_path.
    if EXTRA.exists():
        shutil.rmtree(EXTRA)
    # Which of the two folders it asks depends on the module name RequireJS gives the manager
    # (with every inline script of the page run once, it is `@jupyter-widgets/<hash>`): both.
    for base in (EXTRA, EXTRA / "book"):
        for fonts in (
            base / "@jupyter-widgets" / "html-manager" / "dist",
            base / "@jupyter-widgets",
        ):
            fonts.mkdir(parents=True, exist_ok=True)
            for f in dist.iterdir():
                if f.suffix in (".woff2", ".woff", ".ttf", ".eot", ".svg"):
                    shutil.copy2(f, fonts)


# The theme pair whose header template book/_templates/sections/header.html overrides.
THEME_PINS = {"pydata-sphinx-theme": "0.17.1", "sphinx-book-theme": "1.3.0"}


def theme_mismatch() -> list[str]:
    """Installed theme versions that differ from the pair the header override was made for."""
    from importlib.metadata import PackageNotFoundError, version

    bad = []
    for name, pinned in THEME_PINS.items():
        try:
            got = version(name)
        except PackageNotFoundError:
            got = "not installed"
        if got != pinned:
            bad.append(f"{name} {got} (the header override is for {pinned})")
    return bad


def external_loads(html_dir: Path) -> list[str]:
    """Pages that load a script or stylesheet from another host."""
    bad = []
    for page in html_dir.rglob("*.html"):
        for m in EXTERNAL.finditer(page.read_text(errors="replace")):
            bad.append(f"{page.relative_to(html_dir)}: {m.group(0)[:160]}")
    return bad


# A frame of a gallery strip (tools/make_path_gallery.py): an <img> with a data: URI and the
# step it shows. The grid's thumbnails carry no data-step and stay in the page.
GALLERY_FRAME = re.compile(
    r'<img src="data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)"( data-step=")'
)


def lazy_gallery(html_dir: Path) -> tuple[int, int]:
    """Move gallery frames out of the pages into files loaded lazily; return (frames, bytes).

    Each strip's frames are hidden until its thumbnail is clicked (CSS :target), yet as data:
    URIs they were sent with the page. As files with `loading="lazy"` a browser asks for them
    only when the strip is shown. Files are named by their content's hash (shared by equal
    frames) and linked by a path relative to the page, so the book still works from file://.
    """
    out_dir = html_dir / "_images" / "gallery"
    frames = moved = 0
    for page in html_dir.rglob("*.html"):
        text = page.read_text()
        if 'class="pg-strip"' not in text:
            continue

        def to_file(m: re.Match, page: Path = page) -> str:
            nonlocal frames, moved
            data = base64.b64decode(m.group(2))
            name = hashlib.sha256(data).hexdigest()[:20] + "." + m.group(1)
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / name).write_bytes(data)
            frames += 1
            moved += len(m.group(0))
            rel = os.path.relpath(out_dir / name, page.parent).replace(os.sep, "/")
            return f'<img loading="lazy" src="{rel}"{m.group(3)}'

        page.write_text(GALLERY_FRAME.sub(to_file, text))
    return frames, moved


def main(argv: list[str]) -> int:
    """Vendor, build, check; return the exit status."""
    mismatch = theme_mismatch()
    if mismatch:
        print(
            "book/_templates/sections/header.html overrides the theme's header; check it "
            "against the installed theme, then update THEME_PINS:",
            *mismatch,
            sep="\n  ",
        )
        return 1
    vendor_assets()
    cmd = ["jupyter-book", "build", str(ROOT), "-W", "-n", "--keep-going", *argv]
    status = subprocess.run(cmd, cwd=ROOT).returncode
    if status != 0:
        return status
    frames, moved = lazy_gallery(ROOT / "_build" / "html")
    if frames:
        print(f"Gallery: {frames} frames ({moved / 1e6:.2f} MB of data: URIs) moved to lazy files.")
    bad = external_loads(ROOT / "_build" / "html")
    if bad:
        print("Pages load from other hosts (they would break offline):", *bad, sep="\n  ")
        return 1
    print("Offline check: no page loads a script or stylesheet from another host.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
