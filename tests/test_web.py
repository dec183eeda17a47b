"""The web page: export, the folder-only server, and the page itself in headless Chromium against TF's output."""
import http.client
import json
import os
import shutil

import numpy as np
import pytest

import model
import utils
from web import export as webexport
from web import serve as webserve
from web import shot as webshot

CFG = model.ModelConfig(output_height=16, output_width=16, z_dim=10, gf_dim=8, df_dim=8)
BACKENDS = ("cpu", "wasm", "webgl")


def random_generator(cfg, folder, seed=0):
    """A generator with non-trivial weights everywhere (batch-norm statistics included), saved as float16 and
    loaded back, so the float16 export is exact and the outputs spread over [-1, 1]."""
    g = model.make_generator(cfg)
    rng = np.random.default_rng(seed)
    for v in g.weights:
        shape, name = tuple(v.shape), v.path
        if name.endswith("moving_variance"):
            a = rng.uniform(0.5, 2.0, shape)
        elif name.endswith("gamma"):
            a = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("beta", "moving_mean", "bias")):
            a = rng.normal(0.0, 0.3, shape)
        else:  # dense (in, out) or transposed-conv (5, 5, out, in) kernels
            fan_in = shape[0] if len(shape) == 2 else shape[3] * 25 / 4
            a = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        v.assign(a.astype(np.float32))
    model.save_generator_weights(g, cfg, folder, "float16", step=5)
    g, cfg, _ = model.load_generator_weights(folder)
    return g


def write_figures(folder):
    """A figures folder as visualize.py writes it ({"figures": [{file, kind, caption, figure}], "skipped"}), with
    the training movie as GIF + MP4, a listed file missing, a data file, and entries escaping the folder."""
    import imageio.v2 as imageio
    os.makedirs(folder)
    frames = [np.full((32, 32, 3), 60 * i, np.uint8) for i in range(4)]
    imageio.mimsave(os.path.join(folder, "training_progression.gif"), frames, duration=100)
    imageio.mimsave(os.path.join(folder, "training_progression.mp4"), frames, fps=4, macro_block_size=16)
    pngs = {"average_face.png": "average_face", "change_smile.png": "change_smile", "turing_test.png": "turing_test",
            "turing_test_answers.png": "turing_test", "interpolation_a.png": "interpolation"}
    for i, name in enumerate(pngs):
        utils.imwrite(os.path.join(folder, name), np.full((32, 32, 3), 40 * i, np.uint8))
    utils.write_json(os.path.join(folder, "turing_test_answers.json"), {"cells": []})
    entries = [{"file": "training_progression.gif", "kind": "gif", "figure": "training_progression",
                "caption": "training"},
               {"file": "training_progression.mp4", "kind": "mp4", "figure": "training_progression",
                "caption": "training"}]
    entries += [{"file": n, "kind": "png", "figure": f, "caption": f"caption of {n}"} for n, f in pngs.items()]
    entries += [{"file": "turing_test_answers.json", "kind": "json", "caption": "answers"},
                {"file": "random_walk.mp4", "kind": "mp4", "figure": "random_walk", "caption": "not written"},
                {"file": "../outside.png", "kind": "png", "caption": "outside"}, {"kind": "no file"}]
    utils.write_json(os.path.join(folder, "figures.json"), {"seed": 1, "figures": entries, "skipped": []})


REPO_URL = "https://example.org/neuralface?a=1&b=2"


def write_epoch_grids(folder, epochs=7):
    """What the trainer writes at the end of each epoch: samples/epoch_NNNN.png, one fixed-z grid each."""
    os.makedirs(folder, exist_ok=True)
    for e in range(1, epochs + 1):
        utils.imwrite(os.path.join(folder, f"epoch_{e:04d}.png"), np.full((32, 32, 3), 30 * e, np.uint8))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """An exported page (tiny generator, figures, 7 epoch grids) served on 127.0.0.1; yields (url, site_dir,
    generator)."""
    tmp = tmp_path_factory.mktemp("web")
    try:
        webexport.ensure_node_modules()
    except FileNotFoundError as e:  # no npm and no installed TF.js: no page to test
        pytest.skip(str(e))
    generator = random_generator(CFG, str(tmp / "gen"))
    write_figures(str(tmp / "figures"))
    utils.imwrite(str(tmp / "outside.png"), np.zeros((4, 4, 3), np.uint8))
    write_epoch_grids(str(tmp / "epochs"))
    webexport.export(generator, CFG, str(tmp / "site"), str(tmp / "figures"), "float16", step=5, source="test",
                     repo_url=REPO_URL, epochs_dir=str(tmp / "epochs"))
    server, url = webserve.start_background(str(tmp / "site"))
    yield url, str(tmp / "site"), generator
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        pytest.skip("no Chromium installed (apt-get install -y chromium); the browser tests need it")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as pw:
        b = webshot.launch(pw)
        yield b
        b.close()


def open_page(browser, url, query=""):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + query)
    ok = page.evaluate("window.nf.ready")
    return page, ok, errors


def check_against_tf(page, generator):
    """The page's float output and canvas pixels for its last z against Keras for the same z."""
    z = np.array([page.evaluate("Array.from(window.nf.state.lastZ)")], np.float32)
    out = np.array(page.evaluate("Array.from(window.nf.state.lastOutput)"), np.float32)
    ref = model.generate_images(generator, z)[0]
    assert ref.std() > 0.2, "the test generator should spread its outputs"
    assert out.shape == (ref.size,)
    np.testing.assert_allclose(out.reshape(ref.shape), ref, atol=1e-4, rtol=0)
    pixels = np.array(page.evaluate("""() => {
        const c = document.getElementById('face');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
    }"""), np.int32).reshape(ref.shape[0], ref.shape[1], 4)
    expected = utils.to_uint8(ref[None])[0].astype(np.int32)
    assert np.abs(pixels[..., :3] - expected).max() <= 1
    assert (pixels[..., 3] == 255).all()


# ---------------------------------------------------------------- export and server (no browser)

def test_export_writes_weights_manifest_and_figures(site):
    url, site_dir, generator = site
    manifest = utils.read_json(os.path.join(site_dir, "model.json"))
    assert manifest["model"] == CFG.to_dict() and manifest["dtype"] == "float16" and manifest["step"] == 5
    assert manifest["z_range"] == [-1.0, 1.0]
    assert os.path.getsize(os.path.join(site_dir, "weights.bin")) == manifest["bytes"]
    assert manifest["bytes"] == 2 * sum(int(np.prod(v.shape)) for v in generator.weights)
    back, cfg, _ = webexport.read_web_generator(site_dir)
    for v, w in zip(generator.weights, back.weights):
        np.testing.assert_array_equal(v.numpy(), w.numpy())  # float16 weights round-trip exactly
    for name in ("index.html", "text.js", "figures.js", "app.js", "generator.js", "style.css", "tfjs/tf.min.js",
                 "tfjs/tf-backend-wasm.min.js", "tfjs/tfjs-backend-wasm-simd.wasm", "fonts/noto-sans-kr-400.woff2",
                 "fonts/noto-sans-kr-700.woff2", "fonts/OFL.txt"):
        assert os.path.isfile(os.path.join(site_dir, name)), name
    assert "SIL Open Font License" in open(os.path.join(site_dir, "fonts", "OFL.txt")).read()
    # Subset to the page's characters: tens of KB, not the 6 MB of the npm package's TTF.
    assert os.path.getsize(os.path.join(site_dir, "fonts", "noto-sans-kr-400.woff2")) < 200_000
    figures = utils.read_json(os.path.join(site_dir, "figures.json"))
    assert [f["file"] for f in figures] == [
        "epochs/epoch_0001.png", "figures/training_progression.gif", "figures/training_progression.mp4",
        "figures/average_face.png", "figures/change_smile.png", "figures/turing_test.png",
        "figures/turing_test_answers.png", "figures/interpolation_a.png"]
    # The training movie: the grids of the first 5 epochs of the 7, one frame each, with its epoch.
    assert figures[0]["kind"] == "frames" and [f["epoch"] for f in figures[0]["frames"]] == [1, 2, 3, 4, 5]
    assert sorted(os.listdir(os.path.join(site_dir, "epochs"))) == [f"epoch_{e:04d}.png" for e in range(1, 6)]
    assert figures[1]["figure"] == "training_progression" and figures[3]["caption"] == "caption of average_face.png"
    index = open(os.path.join(site_dir, "index.html"), encoding="utf-8").read()
    assert 'href="https://example.org/neuralface?a=1&amp;b=2"' in index and "{{" not in index
    assert not os.path.exists(os.path.join(site_dir, "outside.png"))  # "../outside.png" would land here


def test_export_float32_and_bad_inputs(tmp_path):
    g = model.make_generator(CFG)
    manifest = webexport.write_weights(g, CFG, str(tmp_path), "float32")
    assert manifest["bytes"] == 4 * sum(int(np.prod(v.shape)) for v in g.weights)
    back, _, _ = webexport.read_web_generator(str(tmp_path))
    for v, w in zip(g.weights, back.weights):
        np.testing.assert_array_equal(v.numpy(), w.numpy())
    with pytest.raises(ValueError, match="float16 or float32"):
        webexport.write_weights(g, CFG, str(tmp_path), "int8")
    g.weights[0].assign(np.full(g.weights[0].shape, 1e6, np.float32))
    with pytest.raises(ValueError, match="overflows float16"):
        webexport.write_weights(g, CFG, str(tmp_path), "float16")
    assert webexport.copy_figures(str(tmp_path), str(tmp_path / "out")) == []  # no figures.json: no sections
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "index.html").write_text("the user's own page")
    with pytest.raises(ValueError, match="no earlier web export"):
        webexport.export(g, CFG, str(tmp_path / "mine"))
    assert (tmp_path / "mine" / "index.html").read_text() == "the user's own page"


def test_missing_npm_is_a_clear_error(tmp_path, monkeypatch):
    shutil.copy(os.path.join(webexport.WEB_SRC, "package-lock.json"), tmp_path)
    assert webexport.stale_packages(str(tmp_path)) == ["@tensorflow/tfjs", "@tensorflow/tfjs-backend-wasm",
                                                       "@expo-google-fonts/noto-sans-kr"]
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="npm"):
        webexport.ensure_node_modules(str(tmp_path))


def test_main_export_web_and_serve_errors(site, tmp_path):
    from conftest import parse_flags
    import main
    gen_dir = tmp_path / "gen"
    random_generator(CFG, str(gen_dir))
    # A sample folder without figures.json (the repository's samples/ has one): the page shows the generator only.
    f = parse_flags(checkpoint_dir=str(gen_dir), export_web=str(tmp_path / "page"), web_dtype="float32",
                    sample_dir=str(tmp_path / "samples"))
    main.main(["main.py"])
    manifest = utils.read_json(str(tmp_path / "page" / "model.json"))
    assert manifest["dtype"] == "float32" and f["serve_port"] == 8000 and f["serve_host"] == "127.0.0.1"
    assert utils.read_json(str(tmp_path / "page" / "figures.json")) == []
    parse_flags(checkpoint_dir=str(gen_dir), export_web=str(tmp_path / "page2"), web_figures=str(tmp_path / "no"))
    with pytest.raises(SystemExit):
        main.main(["main.py"])
    with pytest.raises(ValueError, match="--serve needs a folder"):
        webserve.make_server("")
    with pytest.raises(FileNotFoundError, match="export the page first"):
        webserve.make_server(str(tmp_path))


def get(url, path):
    host, port = url.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path)  # sent as typed: http.client does not normalise '..'
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, r.getheader("Content-Type"), body


# ---------------------------------------------------------------- the page in Chromium

@pytest.mark.parametrize("backend", BACKENDS)
def test_page_draws_what_tf_draws(browser, site, backend):
    url, _, generator = site
    page, ok, errors = open_page(browser, url, f"?backend={backend}")
    try:
        if not ok and backend == "webgl":
            pytest.skip(f"WebGL does not start in this headless Chromium: {page.evaluate('window.nf.state.error')}")
        assert ok, (page.evaluate("window.nf.state.error"), errors)
        assert page.evaluate("window.nf.state.backend") == backend
        assert page.evaluate("window.nf.state.gen.impl") == ("transpose" if backend == "cpu" else "phase")
        status = page.text_content("#status")
        assert "Model loaded in" in status and f"({backend})" in status
        assert "last face drawn in" in page.text_content("#timing")
        assert page.evaluate("window.nf.state.timings.load_ms") > 0
        check_against_tf(page, generator)  # the face drawn at start-up
        z_before = page.evaluate("Array.from(window.nf.state.z)")
        page.click("#random")
        page.evaluate("window.nf.idle()")
        z_random = page.evaluate("Array.from(window.nf.state.lastZ)")
        assert z_random != z_before and all(-1 <= v <= 1 for v in z_random)  # the model's uniform_signed prior
        check_against_tf(page, generator)
        page.evaluate("window.nf.setZ(Array.from({length: 10}, (_, i) => (i - 4.5) / 5))")
        page.click("#generate")
        page.evaluate("window.nf.idle()")
        assert page.evaluate("Array.from(window.nf.state.lastZ)") == pytest.approx([(i - 4.5) / 5 for i in range(10)])
        check_against_tf(page, generator)
        assert page.locator("#strip canvas").count() == 3
        assert errors == []
    finally:
        page.close()


def test_transposed_conv_path_and_odd_sizes(browser, tmp_path):
    """tf.conv2dTranspose (impl=transpose) and a 28-px generator (a 4 -> 7 layer) also match TF."""
    cfg = model.ModelConfig(output_height=28, output_width=28, c_dim=1, z_dim=7, gf_dim=4, df_dim=4,
                            z_dist="normal01")
    generator = random_generator(cfg, str(tmp_path / "gen"))
    webexport.export(generator, cfg, str(tmp_path / "site"), None, "float16")
    server, url = webserve.start_background(str(tmp_path / "site"))
    try:
        for impl in ("phase", "transpose"):
            page, ok, errors = open_page(browser, url, f"?backend=wasm&impl={impl}")
            assert ok, (page.evaluate("window.nf.state.error"), errors)
            assert page.evaluate("window.nf.state.gen.impl") == impl
            assert page.evaluate("window.nf.paletteShape(7)") == {"cols": 3, "rows": 3}
            z = np.array([page.evaluate("Array.from(window.nf.state.lastZ)")], np.float32)
            out = np.array(page.evaluate("Array.from(window.nf.state.lastOutput)"), np.float32).reshape(28, 28, 1)
            np.testing.assert_allclose(out, model.generate_images(generator, z)[0], atol=1e-4, rtol=0)
            page.close()
    finally:
        server.shutdown()
        server.server_close()


def test_page_interactions_language_figures_and_screenshot(browser, site, tmp_path):
    url, _, generator = site
    page, ok, errors = open_page(browser, url, "?backend=cpu")
    try:
        assert ok, (page.evaluate("window.nf.state.error"), errors)
        assert page.evaluate("window.nf.paletteShape(100)") == {"cols": 10, "rows": 10}
        for _ in range(2):
            page.click("#random")
            page.evaluate("window.nf.idle()")
        faces = page.locator("#strip canvas")
        assert faces.count() == 3
        # Hover the oldest face: the z peek shows its z; click it: the palette takes its z and draws it.
        oldest = faces.nth(2)
        z_oldest = json.loads(oldest.get_attribute("data-z"))
        oldest.hover()
        assert page.is_visible("#zpeek")
        assert json.loads(page.get_attribute("#zpeek", "data-z")) == z_oldest
        page.mouse.move(5, 5)
        assert not page.is_visible("#zpeek")
        oldest.click()
        page.evaluate("window.nf.idle()")
        assert page.evaluate("Array.from(window.nf.state.z)") == pytest.approx(z_oldest)
        assert page.evaluate("Array.from(window.nf.state.lastZ)") == pytest.approx(z_oldest)
        check_against_tf(page, generator)
        # Paint: the brush value goes into the clicked cell (z_dim 10 -> a 4x3 palette; cell 0 at the top left).
        page.fill("#brush", "-0.5")
        box = page.locator("#palette").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 8, box["y"] + box["height"] / 6)
        page.evaluate("window.nf.idle()")
        assert page.evaluate("window.nf.state.z[0]") == pytest.approx(-0.5)
        assert page.evaluate("window.nf.state.lastZ[0]") == pytest.approx(-0.5)
        # Walk: A = this z, B = a random z, halfway = the mean.
        z_a = page.evaluate("Array.from(window.nf.state.z)")
        page.click("#set-a")
        page.click("#random")
        page.evaluate("window.nf.idle()")
        z_b = page.evaluate("Array.from(window.nf.state.z)")
        page.click("#set-b")
        page.fill("#walk", "50")
        page.evaluate("window.nf.idle()")
        assert page.evaluate("Array.from(window.nf.state.lastZ)") == pytest.approx((np.add(z_a, z_b) / 2).tolist(), abs=1e-6)
        # Per-dimension slider.
        page.click("#dims-box summary")
        page.fill("#dims input[data-dim='3']", "0.25")
        page.evaluate("window.nf.idle()")
        assert page.evaluate("window.nf.state.lastZ[3]") == pytest.approx(0.25)
        check_against_tf(page, generator)
        # Language toggle, both ways.
        page.click("#lang")
        assert page.evaluate("document.documentElement.lang") == "ko"
        assert page.text_content("#generate") == "생성" and page.text_content("#lang") == "EN"
        assert "모델 로딩" in page.text_content("#status") and page.text_content("#about h2") == "작동 원리"
        page.click("#lang")
        assert page.text_content("#generate") == "Generate" and "Model loaded in" in page.text_content("#status")
        # Figures (fetched as they scroll into view): present sections shown, absent ones hidden.
        webshot.scroll_through(page)
        assert page.is_visible("#fig-average img") and page.is_visible("#fig-change img")
        assert page.is_visible("#fig-other img") and not page.is_visible("#fig-walk")
        movie = page.locator("#fig-progress video, #fig-progress figure:not(#training-movie) img")  # MP4 or its GIF
        assert movie.count() == 1 and movie.get_attribute("src").endswith(("training_progression.mp4",
                                                                          "training_progression.gif"))
        # The training movie over epochs 1-5, the epoch written on each frame.
        assert page.get_attribute("#movie-frame", "src").startswith("epochs/epoch_000")
        page.click("#movie-play")  # pause it where it is
        page.fill("#movie-epoch", "2")
        assert page.get_attribute("#movie-frame", "src") == "epochs/epoch_0003.png"
        assert page.text_content("#training-movie .epoch-label") == "Epoch 3"
        # The Turing test reveals its key.
        assert page.get_attribute("#turing-image", "src").endswith("turing_test.png")
        page.click("#turing-image")
        assert page.get_attribute("#turing-image", "src").endswith("turing_test_answers.png")
        page.click("#turing-reveal")
        assert page.get_attribute("#turing-image", "src").endswith("turing_test.png")
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        assert page.evaluate("Array.from(document.images).every(i => i.naturalWidth > 0)")
        shot = os.environ.get("NF_WEB_SCREENSHOT") or str(tmp_path / "web_page.png")
        webshot.screenshot(page, shot, faces=1, full_page=True)
        assert utils.imread(shot).shape[1] == 1100 and utils.imread(shot).shape[0] > 900
        assert errors == []
    finally:
        page.close()


def test_main_serve_cli(site):
    """`python main.py --serve` serves the folder (port 0: a free one) and refuses to start without one."""
    import subprocess
    import sys
    from conftest import parse_flags
    import main
    parse_flags(serve=None)
    with pytest.raises(SystemExit):
        main.main(["main.py"])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, os.path.join(root, "main.py"), "--serve"]
    proc = subprocess.Popen(cmd + ["--serve_dir", site[1], "--serve_port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"serving {site[1]} at http://localhost:"), line
        url = "http://127.0.0.1:" + line.rsplit(":", 1)[1].split("/")[0] + "/"
        assert get(url, "/index.html")[0] == 200 and get(url, "/%2e%2e/outside.png")[0] == 403
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_page_opened_as_a_file_says_to_serve_it(browser, site):
    page, ok, errors = open_page(browser, "file://" + os.path.join(site[1], "index.html"))
    try:
        assert not ok and "over HTTP" in page.text_content("#status")
        assert page.get_attribute("#status", "data-state") == "error" and page.is_disabled("#generate")
    finally:
        page.close()
