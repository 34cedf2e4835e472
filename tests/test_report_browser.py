"""The HTML report in a real browser: every section laid out, every image decoded, nothing logged.

Drives Debian's ``/usr/bin/chromium`` through its own command line (no driver, no extra Python
dependency). Console messages land on stderr with ``--enable-logging=stderr`` as ``CONSOLE`` lines;
the report has no scripts, so any console line at all (a script error, a refused load) is a failure.
Layout is checked by a probe script added to a *copy* of the page — the report itself stays
script-free — that records, on load, whether each section has a box and each image decoded; the
probe's verdict is read back from ``--dump-dom``.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from test_report import SECTIONS, make_run_dir

from prefshift.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")

PROBE = """<script>
window.addEventListener("load", () => {
  const out = {sections: {}, images: []};
  for (const section of document.querySelectorAll("section")) {
    const box = section.getBoundingClientRect(), style = getComputedStyle(section);
    out.sections[section.id] = box.width > 0 && box.height > 0
      && style.display !== "none" && style.visibility !== "hidden";
  }
  for (const img of document.images) out.images.push(img.complete && img.naturalWidth > 0);
  const pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless run with a private profile and no background traffic."""
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = make_run_dir(tmp_path_factory.mktemp("run"), targets=("news", "legal"))
    return write_report(run)["index.html"]


def test_console_detection_works(tmp_path: Path) -> None:
    """Negative control: a page that throws must be caught, or a clean result would mean nothing."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction();</script></body></html>")
    result = chromium(bad, tmp_path / "profile", "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in console_lines(result.stderr))


def test_sections_visible_images_decoded_no_console_output(page: Path, tmp_path: Path) -> None:
    probed = tmp_path / "probed.html"
    html = page.read_text()
    probed.write_text(html.replace("</body>", PROBE + "</body>"))
    result = chromium(probed, tmp_path / "profile", "--dump-dom")
    assert console_lines(result.stderr) == []
    match = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout)
    assert match, "probe did not run"
    verdict = json.loads(match.group(1).replace("&quot;", '"'))
    assert verdict["sections"] == {section: True for section in (*SECTIONS, "rounds")}
    assert len(verdict["images"]) == html.count("data:image/png;base64,") > 0
    assert all(verdict["images"])


def test_screenshot_is_non_trivial(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    result = chromium(page, tmp_path / "profile", "--window-size=1280,2400", f"--screenshot={shot}")
    assert console_lines(result.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2400)
    # a blank or unstyled page compresses to a few kB; text, tables and plots do not
    assert len(data) > 100_000
