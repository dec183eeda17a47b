"""The page's polish in headless Chromium: title and bundled Korean font, phones, lazy figures, keyboard and screen
readers, reduced motion, captions in both languages, the link to the code."""
import re

import numpy as np
import pytest

from test_web import REPO_URL, browser, open_page, site  # noqa: F401  (fixtures)
from web import export as webexport
from web.shot import scroll_through

TITLE = "프사 뉴럴 / Neural Face"


def fonts_of(page, selector):
    """The fonts Chromium really drew selector's text with (DevTools protocol): [(family, custom web font?)]."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    return [(f["familyName"], f["isCustomFont"]) for f in fonts]


def test_page_html_links_the_code_or_only_the_original():
    with_link = webexport.page_html("https://example.org/x")
    assert 'id="code-link" href="https://example.org/x"' in with_link and ">example.org/x<" in with_link
    without = webexport.page_html("")
    assert "code-link" not in without and "{{" not in without and "carpedm20/DCGAN-tensorflow" in without
    for bad in ("javascript:alert(1)", "example.org", 'https://x"onmouseover="y'):
        with pytest.raises(ValueError, match="web_repo_url"):
            webexport.page_html(bad)


def test_export_leaves_out_the_pool_sheet_and_caps_each_figure(tmp_path):
    import utils
    entries = [{"file": "pool_sheet.png", "figure": "pool", "caption": "pick --arith_indices here"}]
    entries += [{"file": f"option1_dim{d:03d}.png", "figure": "option1", "caption": f"option 1: z[{d}]"} for d in range(9)]
    entries += [{"file": "training.gif", "figure": "training_progression", "epochs": [1, 2], "caption": "c"}]
    for e in entries:
        utils.imwrite(str(tmp_path / e["file"]), np.zeros((4, 4, 3), np.uint8))
    utils.write_json(str(tmp_path / "figures.json"), {"figures": entries})
    kept = webexport.copy_figures(str(tmp_path), str(tmp_path / "site"))
    assert [e["file"] for e in kept] == [f"figures/option1_dim{d:03d}.png" for d in range(6)] + ["figures/training.gif"]
    assert kept[-1]["epochs"] == [1, 2]  # the figures stage's own movie over epochs keeps its epoch numbers
    assert not (tmp_path / "site" / "figures" / "pool_sheet.png").exists()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_title_and_korean_glyphs_render_with_the_bundled_font(browser, site, lang):
    url, _, _ = site
    page, ok, errors = open_page(browser, url, f"?backend=cpu&lang={lang}")
    try:
        assert ok, errors
        assert page.title() == TITLE and page.text_content("h1").split() == TITLE.split()
        page.evaluate("document.fonts.ready.then(() => true)")
        faces = page.evaluate("Array.from(document.fonts).map(f => [f.family, f.weight, f.status])")
        assert ["Noto Sans KR Page", "400", "loaded"] in faces and ["Noto Sans KR Page", "700", "loaded"] in faces
        assert page.evaluate("""document.fonts.check('16px "Noto Sans KR Page"', '프사 뉴럴')""")
        # What Chromium drew the Korean with: the bundled web font (this machine has no CJK system font).
        assert fonts_of(page, "h1 span[lang=ko]") == [("Noto Sans KR", True)]
        if lang == "ko":
            assert fonts_of(page, "#about h2") == [("Noto Sans KR", True)]  # 작동 원리
        font_requests = [u for u in page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
                         if "font" in u or u.endswith(".woff2")]
        assert font_requests and all(u.startswith(url) for u in font_requests)  # served from the export folder
        assert page.evaluate("getComputedStyle(document.body).wordBreak") == "keep-all"
    finally:
        page.close()


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_phone_has_no_sideways_scroll_and_the_language_button_clears_the_title(browser, site, lang):
    url, _, _ = site
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page.goto(url + f"?backend=cpu&lang={lang}")
        assert page.evaluate("window.nf.ready")
        page.click("#dims-box summary")
        scroll_through(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        wide = page.evaluate("""Array.from(document.querySelectorAll('body *')).filter(el => {
            const r = el.getBoundingClientRect();
            return r.width > 0 && r.right > innerWidth + 0.5 && !el.closest('.dims');
        }).map(el => el.id || el.className || el.tagName)""")
        assert wide == []
        gap = page.evaluate("""() => {
            const b = document.getElementById('lang').getBoundingClientRect();
            const range = document.createRange();
            range.selectNodeContents(document.querySelector('h1'));
            return Math.min(...Array.from(range.getClientRects()).map(r =>
                Math.max(r.top - b.bottom, b.top - r.bottom, r.left - b.right, b.left - r.right)));
        }""")
        assert gap >= 4  # the button's box and the title's text never touch
    finally:
        page.close()


def test_figures_are_fetched_only_when_scrolled_near(browser, site):
    url, _, _ = site
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    fetched = []
    page.on("request", lambda r: fetched.append(r.url[len(url):]))
    try:
        page.goto(url + "?backend=cpu")
        assert page.evaluate("window.nf.ready")
        page.wait_for_timeout(500)
        assert page.evaluate("document.getElementById('figures').getBoundingClientRect().top") > 900
        early = [u for u in fetched if u.startswith(("figures/", "epochs/"))]
        assert early == [] and "figures.json" in fetched
        assert page.evaluate("Array.from(document.querySelectorAll('#figures video')).every(v => "
                             "v.preload === 'none' && !v.getAttribute('src'))")
        assert page.evaluate("Array.from(document.querySelectorAll('#figures img')).every(i => i.loading === 'lazy' "
                             "|| i.id === 'movie-frame')")
        scroll_through(page)
        late = set(u for u in fetched if u.startswith(("figures/", "epochs/")))
        assert {"figures/average_face.png", "figures/turing_test.png", "figures/training_progression.mp4"} <= late
        assert {f"epochs/epoch_{e:04d}.png" for e in range(1, 6)} <= late
    finally:
        page.close()


def test_keyboard_paints_the_palette_and_labels_follow_the_language(browser, site):
    url, _, _ = site
    page, ok, errors = open_page(browser, url, "?backend=cpu")
    try:
        assert ok, errors
        page.fill("#brush", "-0.5")
        page.focus("#palette")
        for key in ("ArrowRight", "ArrowRight", "ArrowDown"):  # z_dim 10: 4 columns, so cell 1*4 + 2
            page.keyboard.press(key)
        assert page.get_attribute("#palette", "aria-label").startswith("z palette, cell 7 of 10")
        z_before = page.evaluate("Array.from(window.nf.state.z)")
        page.keyboard.press("Enter")
        page.evaluate("window.nf.idle()")
        z = page.evaluate("Array.from(window.nf.state.z)")
        assert z[6] == pytest.approx(-0.5) and z[:6] + z[7:] == pytest.approx(z_before[:6] + z_before[7:])
        assert page.evaluate("window.nf.state.lastZ[6]") == pytest.approx(-0.5)
        assert page.get_attribute("#palette", "aria-label") == "z palette, cell 7 of 10, value -0.50"
        page.keyboard.press("ArrowUp")
        page.fill("#brush", "0.8")
        page.focus("#palette")
        page.keyboard.press(" ")
        page.evaluate("window.nf.idle()")
        assert page.evaluate("window.nf.state.z[2]") == pytest.approx(0.8)
        # Strip faces: named buttons; Enter copies a face's z back into the palette.
        page.click("#random")
        page.evaluate("window.nf.idle()")
        oldest = page.locator("#strip canvas").last
        assert oldest.get_attribute("role") == "button"
        assert oldest.get_attribute("aria-label") == "Face 1: copy its z into the palette"
        oldest.focus()
        assert page.is_visible("#zpeek")
        page.keyboard.press("Enter")
        page.evaluate("window.nf.idle()")
        assert page.evaluate("Array.from(window.nf.state.z)") == pytest.approx(
            [float(v) for v in page.evaluate("JSON.parse(document.querySelector('#strip canvas:last-child').dataset.z)")])
        assert page.get_attribute("#face-a", "aria-label") == "Face A, where the walk starts"
        assert page.get_attribute("#walk", "aria-label") == "From face A to face B"
        page.click("#lang")
        assert oldest.get_attribute("aria-label") == "얼굴 1: z를 팔레트로 복사"
        assert page.get_attribute("#face-a", "aria-label") == "얼굴 A, 걷기의 시작"
        assert page.get_attribute("#palette", "aria-label").startswith("z 팔레트, 10칸 중 3번째 칸")
        assert page.get_attribute("#lang", "aria-label") == "영어로 보기 (English)"
        assert errors == []
    finally:
        page.close()


def test_status_line_is_announced_only_when_it_matters(browser, site):
    url, _, _ = site
    page, ok, errors = open_page(browser, url, "?backend=cpu")
    try:
        assert ok, errors
        assert page.get_attribute("#status", "aria-live") == "polite"
        page.evaluate("""window.statusChanges = 0;
            new MutationObserver(() => window.statusChanges++).observe(
                document.getElementById('status'), {childList: true, characterData: true, subtree: true});""")
        timing = page.text_content("#timing")
        for _ in range(3):
            page.click("#random")
            page.evaluate("window.nf.idle()")
        page.evaluate("new Promise((r) => setTimeout(r, 50))")
        assert page.evaluate("window.statusChanges") == 0  # each face's time goes to the quiet line
        assert "last face drawn in" in page.text_content("#timing") and page.get_attribute("#timing", "aria-live") is None
        assert timing  # it was filled at start-up too
        page.click("#lang")
        assert page.evaluate("window.statusChanges") > 0 and "모델 로딩" in page.text_content("#status")
    finally:
        page.close()


@pytest.mark.parametrize("motion", ["no-preference", "reduce"])
def test_movies_honour_prefers_reduced_motion(browser, site, motion):
    url, _, _ = site
    page = browser.new_page(viewport={"width": 1100, "height": 900}, reduced_motion=motion)
    try:
        page.goto(url + "?backend=cpu")
        assert page.evaluate("window.nf.ready")
        scroll_through(page)
        page.locator("#training-movie").scroll_into_view_if_needed()
        first = page.get_attribute("#movie-frame", "src")
        page.wait_for_timeout(2200)  # two frames and more at 0.9 s a frame
        video = page.locator("#fig-progress video")
        if motion == "reduce":
            assert page.get_attribute("#training-movie", "data-playing") == "0"
            assert page.get_attribute("#movie-frame", "src") == first == "epochs/epoch_0001.png"
            assert page.text_content("#movie-play") == "Play"
            assert video.evaluate("v => v.paused && !v.autoplay")
        else:
            assert page.get_attribute("#training-movie", "data-playing") == "1"
            assert page.get_attribute("#movie-frame", "src") != first
            assert video.evaluate("v => v.autoplay && v.muted")
    finally:
        page.close()


def test_captions_are_plain_words_in_both_languages(browser, site):
    url, _, _ = site
    page, ok, errors = open_page(browser, url, "?backend=cpu")
    try:
        assert ok, errors
        scroll_through(page)
        plain = "Array.from(document.querySelectorAll('#figures figcaption > span:first-child')).map(s => s.textContent)"
        english = page.evaluate(plain)
        assert len(english) == 6 and all(english)
        assert not any(re.search(r"\.(mp4|gif|png|webm)\b|option \d|--\w", c) for c in english), english
        movie = page.text_content("#training-movie figcaption")
        assert "epochs 1–5" in movie and "mp4" not in movie.lower()
        notes = page.evaluate("Array.from(document.querySelectorAll('#figures .source')).map(s => s.textContent)")
        assert notes == ["Details: caption of interpolation_a.png"]  # only under "More figures"
        assert page.get_attribute("#code-link", "href") == REPO_URL
        assert page.get_attribute("#original-code", "href") == "https://github.com/carpedm20/DCGAN-tensorflow"
        page.click("#lang")
        korean = page.evaluate(plain)
        assert all(re.search("[가-힣]", c) for c in korean), korean
        assert "1–5번째 에폭" in page.text_content("#training-movie figcaption")
        assert page.text_content("#training-movie .epoch-label").endswith("번째 에폭")
        assert page.get_attribute("#fig-average img", "alt").startswith("평균 얼굴")
        assert page.text_content("footer").count("이 페이지의 코드") == 1
        assert errors == []
    finally:
        page.close()
