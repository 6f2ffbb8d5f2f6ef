"""alae-studio in a real browser: headless Chromium (Debian's chromium and chromedriver) driven by
Selenium against the studio serving a tiny model on a free port.

Uploads a face, moves a slider, checks that the edited image changed and equals what the
command line shown on the page writes; uploads a text file and an oversized image and checks the
page's message; checks that the page keeps working afterwards, that the browser asked for
nothing but the studio's own address and that the server tried no connection off this machine. Skips (saying so) only where no browser is installed.
"""
import io
import json
import shlex
import shutil
import socket
import time
import urllib.request
from argparse import Namespace

import numpy as np
import pytest
from PIL import Image
from skimage.data import lfw_subset

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="no browser: apt-get install -y chromium chromium-driver")
TIMEOUT_S = 60
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1900")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LOOPBACK = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(scope="module")
def outgoing():
    """Connections this process tries to open to anywhere but this machine (refused and recorded)."""
    attempts = []
    connect = socket.socket.connect

    def guarded(self, address):
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            attempts.append(address)
            raise OSError(f"test: no connections outside this machine ({address})")
        return connect(self, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", guarded)
        yield attempts


@pytest.fixture(scope="module")
def served(tiny_model, tmp_path_factory, outgoing):
    from alae.editing.directions import Direction, save_direction
    from alae.model_files.loading import load_networks, model_fingerprint
    from alae.tools import studio as studio_tool

    folder = tmp_path_factory.mktemp("studio")
    _, model = load_networks(tiny_model)
    vector = np.random.RandomState(7).randn(16)
    save_direction(Direction(vector / np.linalg.norm(vector), 1.5, "fit", "smile", model_fingerprint(model), {}),
                   folder / "directions" / "smile.npz")
    args = Namespace(model=str(tiny_model), directions=[str(folder / "directions")], images=[], host="127.0.0.1",
                     port=free_port(), refine=0, psi=0.7, cutoff=8, upload_limit_mb=0.05, device="cpu")
    page, studio, url = studio_tool.serve(args, block=False)
    yield url, studio, folder
    page.close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(condition, what: str):
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def text_of(driver, elem_id: str) -> str:
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.ID, elem_id)
    fields = element.find_elements(By.CSS_SELECTOR, "textarea, input")
    return fields[0].get_attribute("value") if fields else element.text


def image_src(driver, elem_id: str) -> str | None:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} img")
    return found[0].get_attribute("src") if found else None


def fetch_pixels(src: str) -> np.ndarray:
    with urllib.request.urlopen(src) as response:
        return np.asarray(Image.open(io.BytesIO(response.read())))


def upload(driver, elem_id: str, path) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=file]").send_keys(str(path))


def set_slider(driver, elem_id: str, value: float) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=number]")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.ENTER)


def requested_urls(driver) -> set[str]:
    urls = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.add(message["params"]["request"]["url"])
    return urls


def test_upload_edit_and_reproduce_in_a_real_browser(served, browser, outgoing, tmp_path, monkeypatch):
    from selenium.webdriver.common.by import By

    from alae.tools import edit

    url, studio, folder = served
    face = lfw_subset()[0]  # a real face, 25x25 grey in [0, 1]
    photo = tmp_path / "face.png"
    Image.fromarray((face * 255).round().astype(np.uint8)).convert("RGB").resize((64, 64)).save(photo)
    browser.get(url)
    wait_for(lambda: "smile" in browser.page_source, "the direction's slider")

    upload(browser, "upload", photo)
    wait_for(lambda: "alae-reconstruct" in text_of(browser, "command") and "face.png" in text_of(browser, "command"),
             "the uploaded face's reconstruction")
    before = wait_for(lambda: image_src(browser, "edited"), "the edited image")
    unedited = fetch_pixels(before)

    set_slider(browser, "direction-0", 2.5)
    line = wait_for(lambda: (t := text_of(browser, "command")).startswith("alae-edit") and t, "the edit's command")
    after = wait_for(lambda: (s := image_src(browser, "edited")) != before and s, "a new edited image")
    shown = fetch_pixels(after)
    assert np.abs(shown.astype(int) - unedited.astype(int)).max() > 0, "the slider did not change the image"

    command, written = line.split("    # writes ")
    argv = shlex.split(command)
    assert argv[0] == "alae-edit" and "--direction=" + str(folder / "directions" / "smile.npz") + "=2.5" in argv
    monkeypatch.chdir(tmp_path)
    assert edit.main([*argv[1:], "--device", "cpu"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / written.strip())), shown)

    (tmp_path / "notes.txt").write_text("not a face")
    upload(browser, "upload", tmp_path / "notes.txt")
    wait_for(lambda: "notes.txt is not an image" in text_of(browser, "upload-message"), "the bad upload's message")
    assert "/tmp" not in text_of(browser, "upload-message")  # names the file as uploaded, not the server's copy
    big = tmp_path / "big.png"
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (256, 256, 3), dtype=np.uint8)).save(big)
    upload(browser, "upload", big)
    wait_for(lambda: "exceed the maximum allowed size" in browser.page_source and "big.png" in browser.page_source,
             "the oversized upload's message")  # Gradio refuses it before it reaches the studio's own check

    set_slider(browser, "direction-0", 1.5)  # still working after the bad uploads, on the same face
    wait_for(lambda: "=1.5" in text_of(browser, "command") and "face.png" in text_of(browser, "command"),
             "an edit after the bad uploads")
    shown = fetch_pixels(wait_for(lambda: (s := image_src(browser, "edited")) != after and s, "the new edit"))
    browser.find_element(By.ID, "save").click()
    links = wait_for(lambda: [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#downloads a")
                              if a.get_attribute("href")], "the downloads")
    png = next(link for link in links if link.split("?")[0].endswith("edit.png"))
    np.testing.assert_array_equal(fetch_pixels(png), shown)
    assert any(link.split("?")[0].endswith("latents.npz") for link in links)
    browser.save_screenshot(str(tmp_path / "studio.png"))
    outside = {u for u in requested_urls(browser) if not u.startswith((url.rstrip("/"), "data:", "blob:"))}
    assert not outside, f"the page asked for {sorted(outside)[:5]}"
    assert not outgoing, f"the studio tried to reach {outgoing[:5]}"
