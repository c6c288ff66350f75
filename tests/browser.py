"""Drive Debian's headless Chromium: load a page, collect console errors, count the
images that decoded, take a screenshot."""
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]
PROBE = ("<script>window.addEventListener('load',()=>{const ok=[...document.images].filter("
         "i=>i.complete&&i.naturalWidth>0).length;document.title='images:'+document.images.length+':'+ok;});"
         "</script>")


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Debian's chromium is needed for the browser tests: apt-get install chromium")
    return path


def run(args, timeout=120):
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                                capture_output=True, text=True, timeout=timeout)
    return result


def console_errors(stderr):
    return [line for line in stderr.splitlines() if "CONSOLE" in line and
            re.search(r"error|uncaught", line, re.IGNORECASE)]


def inspect(html_path, screenshot_path):
    """(images, images decoded, console errors, screenshot pixel std) for a page.  The
    copies loaded here drop a <meta http-equiv='refresh'> (a self-reloading page would keep
    headless Chromium's virtual clock running forever)."""
    with open(html_path) as f:
        page = re.sub(r"<meta http-equiv='refresh'[^>]*>", "", f.read())
    probe_path, still_path = str(html_path) + ".probe.html", str(html_path) + ".still.html"
    with open(probe_path, "w") as g:
        g.write(page.replace("</body>", PROBE + "</body>"))
    with open(still_path, "w") as g:
        g.write(page)
    dom = run(["--dump-dom", "file://" + os.path.abspath(probe_path)])
    match = re.search(r"<title>images:(\d+):(\d+)</title>", dom.stdout)
    shot = run([f"--screenshot={screenshot_path}", "--window-size=1100,2400",
                "file://" + os.path.abspath(still_path)])
    from PIL import Image
    with Image.open(screenshot_path) as img:
        pixels = np.asarray(img.convert("L"), dtype=np.float64)
    images, loaded = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    return images, loaded, console_errors(dom.stderr + shot.stderr), float(pixels.std())
