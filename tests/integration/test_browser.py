"""vid2vid in a real browser (headless Chromium driven by selenium) against the real WebUI of the integration
tests (the ``webui`` fixture: A1111 and/or Forge, whichever is configured).

A user's path: pick vid2vid in img2img's Script dropdown, upload a clip, Generate; the result area plays the
video, and its source URL downloads the same bytes as the file on the server. Also: a sub-option appears and
hides with its switch, a preset says which fields it changed, and the sigma preview after fast typing equals
the one for the final values; the keyframe strip shows before rendering, and a job's keyframe candidates are
picked with a radio per keyframe and propagated from the Jobs tab.

Skipped (with the reason) when Chromium, chromedriver or selenium are missing: Debian's ``chromium`` and
``chromium-driver`` (``apt-get install --no-install-recommends chromium chromium-driver``), ``pip install
selenium``. ``VID2VID_SCREENSHOTS=<folder>`` saves a screenshot of every vid2vid tab there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

pytestmark = [pytest.mark.integration]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1600,2400")
ID = "script_vid2vid_"
"""The Script's elem_id prefix (A1111's Script.elem_id: no tab name for a Script shown in one tab only)."""


@pytest.fixture(scope="module")
def browser(webui):
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("no chromium/chromedriver on this machine (apt-get install --no-install-recommends chromium "
                    "chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="vid2vid-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        driver.get(webui["url"])
        _wait(driver, lambda d: d.execute_script("return !!document.querySelector('#tab_img2img')"), 180)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    from fractions import Fraction

    from tests.clips import make_clip

    return make_clip(tmp_path_factory.mktemp("browser-clip") / "clip.mp4", n_frames=12, size=(96, 64),
                     fps=Fraction(12))


def _wait(driver, condition, seconds=60, what="condition"):
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        try:
            last = condition(driver)
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - the page is still rendering
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"timed out after {seconds} s waiting for {what} (last: {last!r})")


def _el(driver, css):
    return driver.find_element("css selector", css)


def _shown(driver, elem_id) -> bool:
    found = driver.find_elements("css selector", f"#{elem_id}")
    return bool(found) and found[0].is_displayed()


def _click_tab(driver, container_css, title):
    """Open the tab named ``title`` (as the page shows it, case aside: Forge capitalises tab names) in the
    gradio Tabs at ``container_css``, and wait until it is the selected one."""
    def find(d):
        for b in d.find_elements("css selector", f"{container_css} .tab-nav button"):
            if (b.get_attribute("textContent") or "").strip().lower() == title.lower() and b.is_displayed():
                return b
        return None

    def selected(d):
        b = find(d)
        return b is not None and ("selected" in (b.get_attribute("class") or "")
                                  or b.get_attribute("aria-selected") == "true")

    button = _wait(driver, find, 30, f"the tab {title!r} in {container_css}")
    if selected(driver):
        return
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    try:
        button.click()
    except Exception:  # noqa: BLE001 - covered by another element: click it from the page
        driver.execute_script("arguments[0].click()", button)
    _wait(driver, selected, 20, f"the tab {title!r} to open")


def _choose(driver, css, label):
    """Pick the option whose text starts with ``label`` in the gradio dropdown at ``css`` (3.41 and 4): type
    it to filter the list, then click the option (scrolled into view: long lists scroll)."""
    from selenium.webdriver.common.keys import Keys

    box = _wait(driver, lambda d: next((i for i in d.find_elements("css selector", f"{css} input")
                                        if i.is_displayed()), None), 30, f"the dropdown {css}")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(label)

    def find(d):
        for li in d.find_elements("css selector", f"{css} ul.options li"):
            if (li.get_attribute("textContent") or "").replace("✓", "").strip().startswith(label):
                return li
        return None

    option = _wait(driver, find, 20, f"option {label!r} in {css}")
    driver.execute_script("arguments[0].scrollIntoView({block: 'nearest'})", option)
    option.click()


def _type(driver, css, text, *, pause=0.0):
    """Replace the text of the input at ``css`` key by key (``pause`` seconds between keys)."""
    from selenium.webdriver.common.keys import Keys

    field = _el(driver, css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", field)
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.BACKSPACE)
    for ch in text:
        field.send_keys(ch)
        time.sleep(pause)
    field.send_keys(Keys.TAB)


def _value(driver, css):
    return _el(driver, css).get_attribute("value")


def _pick_vid2vid(driver):
    try:
        _click_tab(driver, "#tabs", "img2img")
        if _shown(driver, ID + "tabs"):
            return
        _choose(driver, "#tab_img2img #script_list", "vid2vid")
        _wait(driver, lambda d: _shown(d, ID + "tabs"), 30, "the vid2vid tabs")
    except Exception:
        shots = os.environ.get("VID2VID_SCREENSHOTS")
        if shots:
            driver.save_screenshot(str(Path(shots) / "debug-pick-vid2vid.png"))
        raise


def test_sub_option_follows_its_switch_and_preset_says_what_changed(browser, webui):
    driver = browser
    _pick_vid2vid(driver)
    _click_tab(driver, f"#{ID}tabs", "Masks & correction")
    assert not _shown(driver, ID + "motion_low_cut")
    _el(driver, f"#{ID}motion_mask input[type=checkbox]").click()
    _wait(driver, lambda d: _shown(d, ID + "motion_low_cut"), 20, "the motion mask's threshold to appear")
    _el(driver, f"#{ID}motion_mask input[type=checkbox]").click()
    _wait(driver, lambda d: not _shown(d, ID + "motion_low_cut"), 20, "the threshold to hide again")

    _choose(driver, f"#{ID}strategy", "flow_warp")
    report = _wait(driver, lambda d: "Changed" in _el(d, f"#{ID}strategy_changes").text
                   and _el(d, f"#{ID}strategy_changes").text, 30, "the preset's report")
    assert "flow_warp" in report and "Init image of each frame (Temporal)" in report
    _click_tab(driver, f"#{ID}tabs", "Temporal")
    _wait(driver, lambda d: _shown(d, ID + "init_strength"), 20, "flow_warp's init strength to appear")


def test_image_to_video_box_shows_only_while_the_mode_is_ticked(browser, webui):
    """The Image to video tab holds the mode's checkbox and nothing else until it is ticked: then the box of SVD
    settings appears with them (no empty accordion before)."""
    driver = browser
    _pick_vid2vid(driver)
    _click_tab(driver, f"#{ID}tabs", "Image to video")
    box = ID + "sec_stable_video_diffusion"
    assert _shown(driver, ID + "svd_mode") and not _shown(driver, box)
    _el(driver, f"#{ID}svd_mode input[type=checkbox]").click()
    _wait(driver, lambda d: _shown(d, box), 20, "the SVD settings' box to appear")
    _wait(driver, lambda d: _shown(d, ID + "svd_steps") or _shown(d, ID + "svd_frames"), 20, "the SVD settings")
    _el(driver, f"#{ID}svd_mode input[type=checkbox]").click()
    _wait(driver, lambda d: not _shown(d, box), 20, "the box to hide again")


def test_sigma_preview_after_fast_typing_equals_the_final_values(browser, webui):
    driver = browser
    _pick_vid2vid(driver)
    _click_tab(driver, f"#{ID}tabs", "Sampling")
    box = f"#{ID}sigmas_used textarea"
    first = _wait(driver, lambda d: _value(d, box), 30, "the preview on first load")
    assert "step" in first or "WebUI's own schedule" in first
    _choose(driver, f"#{ID}sigma_schedule", "Karras")
    _wait(driver, lambda d: "karras override" in _value(d, box), 30, "the karras preview")
    _type(driver, "#img2img_steps input[type=number]", "10")
    _type(driver, "#img2img_denoising_strength input[type=number]", "0.3")
    time.sleep(3)  # every change event has come back
    fast = _value(driver, box)
    # the same final values entered slowly, one change at a time
    _type(driver, "#img2img_steps input[type=number]", "11", pause=0.5)
    _wait(driver, lambda d: "11 steps" in _value(d, box), 30, "the preview for 11 steps")
    _type(driver, "#img2img_steps input[type=number]", "10", pause=0.5)
    slow = _wait(driver, lambda d: "10 steps, denoise 0.3" in _value(d, box) and _value(d, box), 30,
                 "the preview for 10 steps")
    assert fast == slow and fast.startswith("4 steps:"), (fast, slow)
    _type(driver, "#img2img_steps input[type=number]", "")  # a cleared box: no traceback, still a schedule
    time.sleep(2)
    assert "steps" in _value(driver, box)
    assert "Traceback" not in webui["log"].read_text(errors="replace").split("Startup time:")[-1]


def test_upload_generate_play_and_download(browser, webui, clip_path):
    driver = browser
    host = webui["host"]
    _pick_vid2vid(driver)
    _click_tab(driver, f"#{ID}tabs", "Video")
    _el(driver, f"#{ID}upload input[type=file]").send_keys(str(clip_path))
    _wait(driver, lambda d: _value(d, f"#{ID}input textarea"), 60, "the uploaded path")
    _type(driver, f"#{ID}max_frames input[type=number]", "3")
    size = str(host.interrupt_size)
    _type(driver, "#img2img_width input[type=number]", size)
    _type(driver, "#img2img_height input[type=number]", size)
    _type(driver, "#img2img_steps input[type=number]", str(min(4, host.interrupt_steps)))
    generate = _el(driver, "#img2img_generate")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", generate)
    generate.click()
    player = _wait(driver, lambda d: d.find_element("css selector", "#vid2vid_result video#vid2vid_player"),
                   900, "the player in the result area")
    state = _wait(driver, lambda d: d.execute_script(
        "const v = arguments[0]; return v.readyState >= 2 && v.videoWidth > 0 ? [v.videoWidth, v.currentSrc] : null",
        player), 60, "the video to load in the player")
    width, src = state
    assert width == host.interrupt_size
    path = urllib.parse.unquote(urllib.parse.urlsplit(src).path.split("file=", 1)[1])
    body = requests.get(src, timeout=60)
    assert body.status_code == 200 and body.content == Path(path).read_bytes()
    assert str(webui["output_dir"]) in path
    links = {a.get_attribute("data-kind") for a in driver.find_elements("css selector", "#vid2vid_result a[download]")}
    assert {"video", "report"} <= links
    shots = os.environ.get("VID2VID_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(shots) / f"{host.name}-after-result.png"))


def test_screenshots_of_every_tab(browser, webui):
    """Every vid2vid tab opens and renders; one screenshot each, in VID2VID_SCREENSHOTS when set (works on
    older versions of the UI too)."""
    shots = os.environ.get("VID2VID_SCREENSHOTS") or str(webui["tmp"] / "screenshots")
    driver = browser
    driver.get(webui["url"])  # the form as a new visitor sees it
    _wait(driver, lambda d: d.execute_script("return !!document.querySelector('#tab_img2img')"), 180)
    _pick_vid2vid(driver)
    folder = Path(shots)
    folder.mkdir(parents=True, exist_ok=True)
    tag = os.environ.get("VID2VID_SCREENSHOTS_TAG", "after")
    titles = [(b.get_attribute("textContent") or "").strip()
              for b in driver.find_elements("css selector", f"#{ID}tabs .tab-nav button")]
    titles = [t for t in titles if t]
    assert titles
    for title in titles:
        _click_tab(driver, f"#{ID}tabs", title)
        time.sleep(1)
        panel = _el(driver, "#img2img_script_container")
        height = driver.execute_script("return arguments[0].getBoundingClientRect().height", panel)
        driver.set_window_size(1600, max(1200, int(height) + 900))
        name = title.lower().replace(" & ", "-").replace(" ", "-")
        driver.execute_script("arguments[0].scrollIntoView()", panel)
        panel.screenshot(str(folder / f"{webui['host'].name}-{tag}-{name}.png"))
    driver.set_window_size(1600, 2400)


def _screens(webui, name):
    """Save a screenshot as <VID2VID_SCREENSHOTS or the WebUI's tmp>/kfui-<host>-<name>.png; returns the path."""
    folder = Path(os.environ.get("VID2VID_SCREENSHOTS") or str(webui["tmp"] / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"kfui-{webui['host'].name}-{name}.png"


def _shot(driver, css, path):
    el = _el(driver, css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", el)
    time.sleep(0.5)
    el.screenshot(str(path))


def _keyframe_mode(driver, label):
    """Click the keyframe mode's radio whose text starts with ``label`` (Temporal tab)."""
    for lab in driver.find_elements("css selector", f"#{ID}keyframe_mode label"):
        if (lab.get_attribute("textContent") or "").strip().startswith(label):
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", lab)
            lab.click()
            return
    raise AssertionError(f"no keyframe mode {label!r}")


def test_keyframe_strip_shows_before_rendering(browser, webui, clip_path):
    driver = browser
    _pick_vid2vid(driver)
    _click_tab(driver, f"#{ID}tabs", "Video")
    _type(driver, f"#{ID}input textarea", str(clip_path))
    _type(driver, f"#{ID}max_frames input[type=number]", "12")
    _click_tab(driver, f"#{ID}tabs", "Temporal")
    _wait(driver, lambda d: _shown(d, ID + "keyframe_show"), 20, "the Show keyframes button (keyframes by default)")
    _keyframe_mode(driver, "Off")
    _wait(driver, lambda d: not _shown(d, ID + "keyframe_show"), 20, "the keyframe button to hide (mode off)")
    assert not _shown(driver, ID + "keyframe_strip")
    _keyframe_mode(driver, "Every N-th")
    button = _wait(driver, lambda d: _shown(d, ID + "keyframe_show") and _el(d, f"#{ID}keyframe_show"), 20,
                   "the Show keyframes button")
    _type(driver, f"#{ID}keyframe_interval input[type=number]", "4")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    summary = _wait(driver, lambda d: "frames rendered" in _value(d, f"#{ID}keyframe_summary textarea")
                    and _value(d, f"#{ID}keyframe_summary textarea"), 60, "the keyframe summary")
    assert summary.startswith("3 of 12 frames rendered"), summary
    images = _wait(driver, lambda d: len(d.find_elements("css selector", f"#{ID}keyframe_strip img")) >= 3
                   and d.find_elements("css selector", f"#{ID}keyframe_strip img"), 30, "the thumbnails")
    _wait(driver, lambda d: all(d.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images), 30,
          "the thumbnails to load")
    text = _el(driver, f"#{ID}keyframe_strip").get_attribute("textContent")
    for caption in ("0: start", "4: interval", "8: interval"):
        assert caption in text, text
    _shot(driver, f"#{ID}sec_keyframes", _screens(webui, "strip"))
    _keyframe_mode(driver, "Off")
    _wait(driver, lambda d: not _shown(d, ID + "keyframe_strip") and not _shown(d, ID + "keyframe_show"), 20,
          "the strip to hide with keyframes off")


def _small_job_form(driver, host, clip_path, *, frames):
    """vid2vid picked, the clip's first ``frames`` frames as input, the img2img tab's size and steps small
    enough for this host's CPU."""
    _pick_vid2vid(driver)
    _click_tab(driver, f"#{ID}tabs", "Video")
    _type(driver, f"#{ID}input textarea", str(clip_path))
    _type(driver, f"#{ID}max_frames input[type=number]", str(frames))
    size = str(host.interrupt_size)
    _type(driver, "#img2img_width input[type=number]", size)
    _type(driver, "#img2img_height input[type=number]", size)
    _type(driver, "#img2img_steps input[type=number]", str(min(4, host.interrupt_steps)))


def test_keyframe_candidates_are_picked_with_a_radio_and_propagated(browser, webui, clip_path):
    import json

    driver = browser
    host = webui["host"]
    out = Path(webui["output_dir"])
    before = set(out.iterdir()) if out.exists() else set()
    _small_job_form(driver, host, clip_path, frames=5)  # keyframes 0 and 4
    _click_tab(driver, f"#{ID}tabs", "Temporal")
    _keyframe_mode(driver, "Every N-th")
    _wait(driver, lambda d: _shown(d, ID + "keyframe_candidates"), 20, "the candidates setting")
    _type(driver, f"#{ID}keyframe_interval input[type=number]", "4")
    _type(driver, f"#{ID}keyframe_candidates input[type=number]", "2")
    box = _el(driver, f"#{ID}colour_coherence input[type=checkbox]")
    if box.is_selected():
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
        box.click()
    generate = _el(driver, "#img2img_generate")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", generate)
    generate.click()

    def new_job(_d):
        for folder in (set(out.iterdir()) if out.exists() else set()) - before:
            try:
                m = json.loads((folder / "manifest.json").read_text())
            except (OSError, ValueError):
                continue
            if m.get("stages", {}).get("candidates", {}).get("done") == 4 and "picks" not in m.get("keyframes", {}):
                return folder
        return None

    job = _wait(driver, new_job, 900, "the candidates to render")
    _wait(driver, lambda d: "interrupted" in _el(d, "#vid2vid_result").text, 120, "the job to stop for the picks")
    _click_tab(driver, f"#{ID}tabs", "Jobs")
    _el(driver, f"#{ID}job_refresh").click()
    time.sleep(2)
    _choose(driver, f"#{ID}job_list", job.name)
    radios = _wait(driver, lambda d: len(d.find_elements("css selector", f"#{ID}job_candidates input[type=radio]"))
                   == 4 and d.find_elements("css selector", f"#{ID}job_candidates input[type=radio]"), 60,
                   "a radio per candidate")
    _wait(driver, lambda d: _shown(d, ID + "job_propagate"), 20, "the Propagate button")
    assert _value(driver, f"#{ID}keyframe_picks textarea") == "0:0, 4:0"
    pick = next(r for r in radios if r.get_attribute("data-frame") == "4" and r.get_attribute("value") == "1")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", pick)
    pick.click()
    _wait(driver, lambda d: _value(d, f"#{ID}keyframe_picks textarea") == "0:0, 4:1", 20,
          "the radio to write the picks")
    images = driver.find_elements("css selector", f"#{ID}job_candidates img")
    _wait(driver, lambda d: all(d.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images), 30,
          "the candidate images to load")
    _shot(driver, f"#{ID}job_candidates", _screens(webui, "candidates"))
    _el(driver, f"#{ID}job_propagate").click()

    def finished(_d):
        m = json.loads((job / "manifest.json").read_text())
        return m.get("status") == "done" and m

    manifest = _wait(driver, finished, 900, "the job to propagate and finish")
    assert manifest["keyframes"]["picks"] == {"0": 0, "4": 1}
    assert manifest["settings"]["keyframe_picks"] == "0:0, 4:1"
    _wait(driver, lambda d: d.find_element("css selector", "#vid2vid_result video#vid2vid_player"), 120,
          "the result of the resumed job")
    _shot(driver, "#vid2vid_result", _screens(webui, "after-propagate"))
    _click_tab(driver, f"#{ID}tabs", "Jobs")
    _el(driver, f"#{ID}job_refresh").click()
    time.sleep(2)
    _choose(driver, f"#{ID}job_list", job.name)
    _wait(driver, lambda d: "Picks taken" in _el(d, f"#{ID}job_candidates").text, 60, "the picks shown as taken")
    assert not _shown(driver, ID + "job_propagate")
    # problem detection may flag the scene (random weights): then its groups and the retry button show
    flagged = bool([g for g in manifest["keyframes"].get("groups", []) if g.get("flagged")])
    _wait(driver, lambda d: _shown(d, ID + "job_retry") == flagged, 20, "the retry button to follow the flags")
    if flagged:
        assert "Scenes flagged by problem detection" in _el(driver, f"#{ID}job_flagged").text
    _shot(driver, f"#{ID}tab_jobs", _screens(webui, "jobs-after"))


def test_a_flagged_keyframe_is_rendered_again_from_the_jobs_tab(browser, webui, clip_path):
    import json

    driver = browser
    host = webui["host"]
    out = Path(webui["output_dir"])
    before = set(out.iterdir()) if out.exists() else set()
    _small_job_form(driver, host, clip_path, frames=6)  # keyframes 0 and 4
    _type(driver, "#img2img_seed input[type=number]", "1234")
    _click_tab(driver, f"#{ID}tabs", "Temporal")
    _keyframe_mode(driver, "Every N-th")
    _wait(driver, lambda d: _shown(d, ID + "keyframe_candidates"), 20, "the keyframe settings")
    _type(driver, f"#{ID}keyframe_interval input[type=number]", "4")
    _type(driver, f"#{ID}keyframe_candidates input[type=number]", "1")
    _type(driver, f"#{ID}keyframe_problem_ratio input[type=number]", "0.2")  # random weights: always flagged
    _click_tab(driver, f"#{ID}tabs", "Jobs")  # a new job: nothing to resume, no picks
    _type(driver, f"#{ID}resume_job textarea", "")
    _type(driver, f"#{ID}keyframe_picks textarea", "")
    generate = _el(driver, "#img2img_generate")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", generate)
    generate.click()

    def finished(seen):
        def check(_d):
            for folder in (set(out.iterdir()) if out.exists() else set()) - before:
                try:
                    m = json.loads((folder / "manifest.json").read_text())
                except (OSError, ValueError):
                    continue
                if m.get("status") == "done" and seen(m):
                    return folder, m
            return None
        return check

    job, manifest = _wait(driver, finished(lambda m: "reseed" not in m.get("keyframes", {})), 900, "the job")
    assert [g["flagged"] for g in manifest["keyframes"]["groups"]] == [True]
    _wait(driver, lambda d: d.find_element("css selector", "#vid2vid_result video#vid2vid_player"), 120,
          "the result")
    _click_tab(driver, f"#{ID}tabs", "Jobs")
    _el(driver, f"#{ID}job_refresh").click()
    time.sleep(2)
    _choose(driver, f"#{ID}job_list", job.name)
    _wait(driver, lambda d: _shown(d, ID + "job_redo"), 60, "the re-render button of a flagged job")
    assert "Scenes flagged by problem detection" in _el(driver, f"#{ID}job_flagged").text
    assert _value(driver, f"#{ID}job_redo_frames textarea") == "0, 4"
    _shot(driver, f"#{ID}tab_jobs", _screens(webui, "flagged"))
    _type(driver, f"#{ID}job_redo_frames textarea", "4")
    _el(driver, f"#{ID}job_redo").click()
    job, manifest = _wait(driver, finished(lambda m: m.get("keyframes", {}).get("reseed") == {"4": 1}), 900,
                          "the keyframe rendered again and the job finished")
    assert manifest["keyframes"].get("redo") in (None, [])
    assert "rendered again with seed" in (job / "job.log").read_text()
