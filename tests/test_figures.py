"""Visualize mode (the figures package) on tiny generators: files, frame counts, sizes, seeds and skips."""
import json
import os
import shutil
import subprocess
import sys

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

import dataset
import model
import runs
import train
import figures
import utils
from figures import context, output, page, paper, runner
from conftest import ROOT, parse_flags, write_faces


def tiny_source(folder, **overrides):
    """A freshly initialised tiny generator saved as weights and loaded back as visualize gets it."""
    cfg = model.ModelConfig(**{**dict(output_height=16, output_width=16, z_dim=10, gf_dim=8, df_dim=8), **overrides})
    model.save_generator_weights(model.make_generator(cfg), cfg, str(folder), step=3)
    return runs.load_from_weights(str(folder))


def vis_flags(sample_dir, **overrides):
    args = dict(visualize=None, batch_size=8, seed=3, sample_dir=str(sample_dir), walk_frames=8, real_num=4,
                pool_num=12, nn_num=2)
    args.update(overrides)
    return parse_flags(**args)


def gif_info(path):
    """(frames as read back, total duration in ms, frame shape)."""
    with Image.open(path) as im:
        durations = []
        for k in range(im.n_frames):
            im.seek(k)
            durations.append(im.info["duration"])
    frames = iio.imread(path, index=None)
    return len(frames), sum(durations), frames.shape[1:3]


def mp4_frames(path):
    with imageio_v2.get_reader(path, format="FFMPEG") as reader:
        return np.stack(list(reader.iter_data()))


def index_of(result):
    return {e["file"]: e for e in json.load(open(result["index"]))["figures"]}


def test_options_0_to_4_write_the_originals_files(tmp_path):
    src = tiny_source(tmp_path / "g")
    out = tmp_path / "s"
    result = figures.run(src, vis_flags(out, figures="options", vis_dims=3))
    files = sorted(os.listdir(out))
    assert files == sorted(["figures.json", "option0_samples.png", "option4_merged.gif", "option4_merged.mp4"] +
                           [f"option1_dim{d:03d}.png" for d in range(3)] +
                           [f"option3_dim{d:03d}.gif" for d in range(3)] +
                           [e["file"] for e in result["written"] if e["file"].startswith("option2_")])
    assert len([f for f in files if f.startswith("option2_")]) == 3
    assert utils.imread(str(out / "option0_samples.png")).shape == (2 * 16, 4 * 16, 3)  # batch 8 -> 2 x 4
    assert utils.imread(str(out / "option1_dim002.png")).shape == (2 * 16, 4 * 16, 3)
    for name in ("option3_dim000.gif", os.path.basename([f for f in files if f.startswith("option2_")][0])):
        n, ms, shape = gif_info(str(out / name))
        assert shape == (16, 16) and 1 <= n <= 8 and ms == pytest.approx(8 * 1000 / output.GIF_FPS, abs=8)
    n, ms, shape = gif_info(str(out / "option4_merged.gif"))
    assert shape == (16, 3 * 16) and ms == pytest.approx(8000, abs=16 * 10)  # 16 ping-pong frames in the original's 8 s
    assert index_of(result)["option4_merged.gif"]["frames"] == 16
    assert mp4_frames(str(out / "option4_merged.mp4")).shape[0] == 16
    # --option alone makes only that option.
    only = figures.run(src, vis_flags(tmp_path / "only", option=0))
    assert [e["file"] for e in only["written"]] == ["option0_samples.png"]


def test_option_sweeps_follow_the_models_z_range(tmp_path, monkeypatch):
    src = tiny_source(tmp_path / "g", z_dist="uniform_unsigned")
    seen = []
    real_generate = model.generate_images
    monkeypatch.setattr(model, "generate_images", lambda g, z, b=64: seen.append(np.array(z)) or real_generate(g, z, b))
    figures.run(src, vis_flags(tmp_path / "s", option=3, vis_dims=1))
    z = seen[0]
    np.testing.assert_allclose(z[:, 0], np.linspace(0, 1, 8), atol=1e-6)  # U(0, 1): swept 0..1, not -1..1
    np.testing.assert_allclose(z[:, 1:], 0.5)  # the rest at the prior's mean (--z_center mean)
    seen.clear()
    figures.run(src, vis_flags(tmp_path / "s", figures="random_walk,average_face", z_center="zero",
                               average_face="center"))
    average, walk = seen  # run in the page's order
    assert walk.min() == 0 and walk.max() == pytest.approx(1.0)  # from literal zero the walk still reaches 1
    np.testing.assert_array_equal(average, 0.0)


def test_the_average_face_is_the_rest_of_g_drawn_from_its_mean_first_features(tmp_path):
    src = tiny_source(tmp_path / "g")
    head, rest = page.split_at_first_features(src.generator)
    z = model.sample_z("uniform_signed", 6, 10, np.random.default_rng(0)).astype(np.float32)
    np.testing.assert_allclose(rest(np.asarray(head(z, training=False))), model.generate_images(src.generator, z),
                               atol=1e-5)  # the split loses nothing: rest(head(z)) is G(z)
    result = figures.run(src, vis_flags(tmp_path / "s", figures="average_face"))
    entry = index_of(result)["average_face.png"]
    assert entry["draws"] == page.AVERAGE_DRAWS and 0 <= entry["active_units_center"] <= 1
    assert 0 < entry["active_units_prior"] <= 1
    # The figure is the rest of G drawn from the mean of the first features over the figure's draws of z.
    ctx = context.Context(src, vis_flags(tmp_path / "x"), 3, None)
    draws = ctx.prior("average_face", page.AVERAGE_DRAWS).astype(np.float32)
    expected = rest(np.asarray(head(draws, training=False)).mean(0, keepdims=True))
    got = utils.imread(str(tmp_path / "s" / "average_face.png"))
    assert np.abs(got.astype(int) - np.rint((expected[0] + 1) * 127.5).clip(0, 255).astype(int)).max() <= 1
    # --average_face center draws G at the prior's centre instead, as before.
    figures.run(src, vis_flags(tmp_path / "c", figures="average_face", average_face="center"))
    centre = model.generate_images(src.generator, np.zeros((1, 10), np.float32))[0]
    got = utils.imread(str(tmp_path / "c" / "average_face.png"))
    assert np.abs(got.astype(int) - np.rint((centre + 1) * 127.5).clip(0, 255).astype(int)).max() <= 1


def test_same_seed_same_figures_other_seed_other_figures(tmp_path):
    src = tiny_source(tmp_path / "g")
    a = figures.run(src, vis_flags(tmp_path / "a", option=0, seed=11))
    b = figures.run(src, vis_flags(tmp_path / "b", option=0, seed=11))
    c = figures.run(src, vis_flags(tmp_path / "c", option=0, seed=12))
    read = lambda r: open(os.path.join(r["sample_dir"], "option0_samples.png"), "rb").read()  # noqa: E731
    assert read(a) == read(b) != read(c)


@pytest.fixture
def tiny_run(tiny_flags):
    """A tiny training run of 5 steps with fixed-z grids at steps 2, 4 and 5; returns (flags, source)."""
    f = tiny_flags(train=None, epoch=1, sample_freq=2, log_freq=1)
    train.train(f)
    return f, runs.find_generator(runs.run_paths(f["out_dir"], f["out_name"], f["checkpoint_dir"], f["sample_dir"]))


def test_page_figures_from_a_training_run(tiny_run, tmp_path):
    f, src = tiny_run
    plot_path = os.path.join(src.run_dir, "metrics.png")
    assert os.path.isfile(plot_path)  # drawn at the end of training: the losses against step
    os.unlink(plot_path)
    flags = vis_flags("vis", figures="page", data_dir=f["data_dir"], out_dir=f["out_dir"])
    result = figures.run(src, flags)
    out = os.path.join(src.run_dir, "vis")
    assert result["sample_dir"] == out
    index = index_of(result)
    # Training progression: the three grids in step order, each with its step (and epoch) written above it.
    gif_n, gif_ms, gif_shape = gif_info(os.path.join(out, "training_progression.gif"))
    assert gif_n == 3 and gif_shape == (32 + 16, 64)  # 2 x 4 grid of 16 px under a 16 px label band
    video = mp4_frames(os.path.join(out, "training_progression.mp4"))
    assert video.shape[0] == 3 and video.shape[1] % 16 == 0 and video.shape[2] % 16 == 0
    assert min(video.shape[1:3]) >= output.MIN_VIDEO_SIDE
    assert index["training_progression.mp4"]["steps"] == [2, 4, 5]
    many = [np.full((544, 512, 3), k, np.uint8) for k in range(50)]
    preview, keep = page.gif_preview(many)
    assert len(preview) == 24 and preview[0].shape == (384, 361, 3) and preview[-1][0, 0, 0] == 49
    assert keep[0] == 0 and keep[-1] == 49 and len(keep) == 24
    assert page.step_label(4, {"num_images": 40, "batch_size": 8}) == "step 4  epoch 0.80"
    # The average face: G's mean first features drawn by the rest of G (its own test checks the pixels).
    assert utils.imread(os.path.join(out, "average_face.png")).shape == (16, 16, 3)
    assert index["average_face.png"]["draws"] == page.AVERAGE_DRAWS and index["average_face.png"]["z_value"] == 0.0
    assert os.path.isfile(plot_path)  # and redrawn by --visualize
    # The random walk: walk_frames frames of a 4 x 4 grid (16 cells, z_dim 10 -> 10 cells -> 3 x 4).
    walk = mp4_frames(os.path.join(out, "random_walk.mp4"))
    assert walk.shape[0] == 8 and index["random_walk.gif"]["frames"] == 8
    _, ms, shape = gif_info(os.path.join(out, "random_walk.gif"))
    assert shape == (3 * 16, 4 * 16) and ms == pytest.approx(8 * 1000 / output.VIDEO_FPS, abs=8)
    # Change grids: an untrained 16 px generator draws no face dlib finds, so the landmark rankings are skipped
    # with the reason and the saturation ranking and the overall one are still made.
    skipped = {s["figure"]: s["reason"] for s in result["skipped"]}
    assert "change_smile" in skipped and "found a face in only" in skipped["change_smile"]
    assert utils.imread(os.path.join(out, "change_saturation.png")).shape[0] > 10 * 48  # ten rows of 48 px + header
    ranking = json.load(open(os.path.join(out, "change_ranking.json")))
    assert len(ranking["measures"]["saturation"]["effect_per_dim"]) == 10
    assert ranking["no_face"]["of"] == 10 * page.CHANGE_BASES * page.CHANGE_COLS
    # Direction grids: each base swept along all dimensions' slopes at once, measured again; none for a measure no
    # dimension was measured to change.
    assert "no z dimension was measured" in skipped["direction_smile"]
    assert utils.imread(os.path.join(out, "direction_saturation.png")).shape[0] > page.CHANGE_BASES * 48
    assert len(index["direction_saturation.png"]["measured"]) == page.CHANGE_BASES
    assert index["direction_saturation.png"]["predicted"] > 0
    # Turing test: 4 real + 4 generated shuffled into one grid, with the answer key.
    assert utils.imread(os.path.join(out, "turing_test.png")).shape == (2 * 16, 4 * 16, 3)
    assert utils.imread(os.path.join(out, "turing_test_answers.png")).shape == (2 * 64, 4 * 64, 3)
    cells = json.load(open(os.path.join(out, "turing_test_answers.json")))["cells"]
    assert sum(c["real"] for c in cells) == 4 and all(c["file"].startswith("faces") for c in cells if c["real"])
    sheet = utils.imread(os.path.join(out, "turing_test.png"))
    for c in cells:  # the key is right: each real cell holds that file's crop as the trainer loads it
        cell = sheet[c["row"] * 16:(c["row"] + 1) * 16, c["col"] * 16:(c["col"] + 1) * 16]
        if c["real"]:
            crop = dataset.load_image(os.path.join(f["data_dir"], c["file"]), 108, 108, 16, 16, False, 3)
            np.testing.assert_array_equal(cell, utils.to_uint8(crop))


def band_text(frame, height=16):
    """The label band of a training-movie frame as it reads back from the GIF, to compare with text_band."""
    return frame[:height].astype(int)


def test_training_movie_uses_the_runs_epoch_grids_with_the_epoch_on_each_frame(tiny_run):
    f, src = tiny_run
    samples = os.path.join(src.run_dir, "samples")
    assert os.path.isfile(os.path.join(samples, "epoch_0001.png"))  # the trainer's per-epoch grid
    # One epoch's grid makes no movie beside the step grids: those are used.
    first = figures.run(src, vis_flags("vis", figures="training_progression"))
    assert index_of(first)["training_progression.mp4"]["steps"] == [2, 4, 5]
    grid = utils.imread(os.path.join(samples, "epoch_0001.png"))
    utils.imwrite(os.path.join(samples, "epoch_0002.png"), 255 - grid)  # a second epoch, told apart by its pixels
    result = figures.run(src, vis_flags("vis", figures="training_progression"))
    index = index_of(result)
    movie, preview = index["training_progression.mp4"], index["training_progression.gif"]
    assert movie["epochs"] == preview["epochs"] == [1, 2] and "steps" not in movie
    assert movie["fps"] == preview["fps"] == page.EPOCH_FPS
    assert mp4_frames(os.path.join(src.run_dir, "vis", "training_progression.mp4")).shape[0] == 2
    frames = iio.imread(os.path.join(src.run_dir, "vis", "training_progression.gif"), index=None)
    assert frames.shape == (2, 16 + 32, 64, 3)  # the 2 x 4 grid of 16 px under a 16 px band
    for k, frame in enumerate(frames):  # "epoch 1", "epoch 2" written above the grids, in order
        want, other = (band_text(page.text_band(f"epoch {e}", 64, 16)) for e in (k + 1, 2 - k))
        assert np.abs(band_text(frame) - want).mean() < np.abs(band_text(frame) - other).mean()
    np.testing.assert_allclose(frames[1, 16:].astype(int), 255 - grid.astype(int), atol=40)
    for e in (movie, preview):  # the captions name no file (the MP4 is not always beside the GIF)
        assert "epochs, 1..2" in e["caption"] and not any(x in e["caption"] for x in (".mp4", ".gif", ".png", "MP4"))


def test_training_movie_beside_generator_weights_prefers_epochs_and_falls_back_to_steps(tmp_path):
    src = tiny_source(tmp_path / "g")
    out = tmp_path / "s"
    os.makedirs(tmp_path / "g" / "training_frames")
    for step in (30, 10, 200):
        utils.imwrite(str(tmp_path / "g" / "training_frames" / f"train_{step:08d}.png"),
                      np.zeros((32, 64, 3), np.uint8))
    steps = index_of(figures.run(src, vis_flags(out, figures="training_progression")))
    assert steps["training_progression.mp4"]["steps"] == [10, 30, 200]
    assert steps["training_progression.mp4"]["fps"] == page.TRAINING_FPS
    os.makedirs(tmp_path / "g" / "epochs")  # the shipped generator's first epochs
    def epoch_grid(epoch):
        utils.imwrite(str(tmp_path / "g" / "epochs" / f"epoch_{epoch:04d}.png"), np.full((32, 64, 3), epoch, np.uint8))

    for epoch in (1, 2, 10):
        epoch_grid(epoch)
    epochs = index_of(figures.run(src, vis_flags(out, figures="training_progression")))
    assert epochs["training_progression.mp4"]["epochs"] == [1, 2, 10]
    assert gif_info(str(out / "training_progression.gif"))[0] == 3
    # A long movie: the GIF is a preview, and says so without naming the MP4.
    for epoch in range(11, 40):
        epoch_grid(epoch)
    many = index_of(figures.run(src, vis_flags(out, figures="training_progression")))
    assert len(many["training_progression.mp4"]["epochs"]) == 32
    assert len(many["training_progression.gif"]["epochs"]) == 24
    assert "a preview: 24 of 32 frames" in many["training_progression.gif"]["caption"]
    assert "MP4" not in many["training_progression.gif"]["caption"]


def test_paper_figures_and_recorded_skips(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "SHIPPED_GENERATOR", str(tmp_path / "g"))
    src = tiny_source(tmp_path / "g")
    # 30 real crops, each image three times: a held-out crop's nearest neighbour must be a copy, at distance 0.
    faces = tmp_path / "data" / "faces"
    for path in write_faces(str(faces), 10):
        shutil.copy(path, path.replace("face_", "copy1_"))
        shutil.copy(path, path.replace("face_", "copy2_"))
    (faces / "broken.jpg").write_bytes(b"not a jpeg")  # skipped as the trainer skips it, never searched or shown
    out = tmp_path / "s"
    result = figures.run(src, vis_flags(out, figures="paper,page", data_dir=str(tmp_path / "data"),
                                          arith_indices="0,1,2;3;4,5"))
    index = index_of(result)
    skipped = {s["figure"]: s["reason"] for s in result["skipped"]}
    assert "training_progression" in skipped and "training_frames" in skipped["training_progression"]
    lin, sl = (utils.imread(str(out / f"interpolation_{k}.png")) for k in ("linear", "slerp"))
    assert lin.shape == sl.shape == (8 * 16, 10 * 16, 3)
    # The same pairs (equal end columns), joined by different paths.
    assert np.array_equal(lin[:, :16], sl[:, :16]) and np.array_equal(lin[:, -16:], sl[:, -16:])
    assert not np.array_equal(lin[:, 16:-16], sl[:, 16:-16])
    assert index["vector_arithmetic.png"]["groups"] == [[0, 1, 2], [3], [4, 5]]
    crops, samples = (utils.imread(str(out / n)) for n in ("training_crops.png", "samples_sheet.png"))
    assert crops.shape == samples.shape == (5 * 16, 6 * 16, 3)  # the 30 readable crops, and as many samples
    assert "turn_vector" in skipped  # no faces found to pick left/right-facing ones
    nn = json.load(open(out / "nearest_neighbours.json"))
    assert nn["searched"] == 30 - 2 and nn["skipped_unreadable"] == 1 and len(nn["generated_nn_distance"]) == 2
    assert all(0 < d <= 1 for d in nn["generated_nn_distance"])
    assert not set(nn["held_out_files"]) & {f for row in nn["neighbour_files"] for f in row}
    assert nn["held_out_real_nn_distance"] == [0.0, 0.0]
    number = lambda name: name.rsplit("_", 1)[1]  # noqa: E731
    assert [number(row[0]) for row in nn["neighbour_files"][2:]] == [number(h) for h in nn["held_out_files"]]
    # A shipped generator that carries its training grids in training_frames/ gets the movie too.
    os.makedirs(tmp_path / "g" / "training_frames")
    for step in (10, 20):
        utils.imwrite(str(tmp_path / "g" / "training_frames" / f"train_{step:08d}.png"),
                      np.zeros((32, 32, 3), np.uint8))
    again = figures.run(src, vis_flags(out, figures="page", data_dir=str(tmp_path / "no_data")))
    assert mp4_frames(str(out / "training_progression.mp4")).shape[0] == 2
    assert "turing_test" in {s["figure"] for s in again["skipped"]}  # no real faces: a recorded skip
    # figures.json keeps the paper figures of the earlier run into the same folder.
    assert "interpolation_slerp.png" in index_of(again)


def test_grayscale_non_square_generator(tmp_path):
    src = tiny_source(tmp_path / "g", c_dim=1, output_height=16, output_width=32, z_dim=5)
    out = tmp_path / "s"
    result = figures.run(src, vis_flags(out, figures="options,page", vis_dims=5, data_dir=str(tmp_path / "none")))
    assert utils.imread(str(out / "average_face.png")).shape == (16, 32, 3)
    assert gif_info(str(out / "option4_merged.gif"))[2] == (2 * 16, 3 * 32)  # 5 dims -> 2 x 3 grid
    assert "change_saturation" in {s["figure"] for s in result["skipped"]}


def test_slerp_and_lerp_endpoints_equal_the_inputs():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, 7), rng.uniform(-1, 1, 7)
    t = np.linspace(0, 1, 10)
    for path in (context.slerp(a, b, t), context.slerp(a, b, t, center=0.5), context.lerp(a, b, t)):
        np.testing.assert_allclose(path[0], a, atol=1e-6)
        np.testing.assert_allclose(path[-1], b, atol=1e-6)
    s = context.slerp(a, a * 2, t)  # parallel vectors: no great circle, falls back to the straight line
    np.testing.assert_allclose(s, context.lerp(a, a * 2, t), atol=1e-6)
    u, v = np.eye(2)
    np.testing.assert_allclose(np.linalg.norm(context.slerp(u, v, t), axis=1), 1.0, atol=1e-6)  # on the circle


def test_z_center_and_flag_errors():
    assert context.z_center("uniform_signed") == 0.0 and context.z_center("normal01") == 0.0
    assert context.z_center("uniform_unsigned") == 0.5 and context.z_center("uniform_unsigned", "zero") == 0.0
    names = lambda figures, option=None: [n for n, _ in runner.selected_figures(figures, option)]  # noqa: E731
    assert names("") == names("all") == names("options,page,paper") and len(names("")) == 5 + 5 + 5
    assert names("", 2) == ["option2"] and names("options", 2) == ["option2"]
    assert names("turn_vector,average_face,option4") == ["option4", "average_face", "turn_vector"]  # in order
    with pytest.raises(ValueError, match="unknown 'pages'"):
        names("pages")
    with pytest.raises(ValueError, match="--option"):
        names("", 7)
    with pytest.raises(ValueError, match="three groups"):
        paper.parse_indices("1,2;3", 10)
    with pytest.raises(ValueError, match="outside"):
        paper.parse_indices("1;2;30", 10)


def _main(*args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_writes_the_table_and_missing_checkpoint_is_a_clear_error(tmp_path):
    tiny_source(tmp_path / "g")
    r = _main("--visualize", "--checkpoint_dir", "g", "--figures", "option0,average_face", "--seed", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "option0_samples.png" in r.stdout and "average_face.png" in r.stdout and "(seed 1)" in r.stdout
    assert sorted(os.listdir(tmp_path / "samples")) == ["average_face.png", "figures.json", "option0_samples.png"]
    r = _main("--visualize", "--checkpoint_dir", "no_such_run/checkpoint", "--out_dir", "o", cwd=tmp_path)
    assert r.returncode == 1 and "looked in" in r.stderr and "no_such_run/checkpoint" in r.stderr


def git(*args, stdin=None):
    return subprocess.run(["git", "-C", ROOT, *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_visualize_with_default_flags_writes_only_to_ignored_folders(tmp_path):
    """From the repository root the default sample folder is samples/, which git ignores: run from a scratch folder
    (so a developer's samples/ is left alone), every file written must lie under samples/ there, be ignored at the
    same place in the repository, and leave the repository's git status as it was."""
    if shutil.which("git") is None or git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        pytest.skip("needs git and a git checkout of the repository")
    before = git("status", "--porcelain").stdout
    r = _main("--visualize", "--figures", "option0,average_face,random_walk,training_progression", "--walk_frames", "4",
              "--batch_size", "8", "--seed", "0", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    written = sorted(os.path.relpath(os.path.join(d, name), tmp_path) for d, _, names in os.walk(tmp_path)
                     for name in names)
    assert "samples/figures.json" in written and all(w.startswith("samples" + os.sep) for w in written), written
    ignored = git("check-ignore", "--no-index", "--stdin", stdin="\n".join(written) + "\n").stdout.split()
    assert sorted(ignored) == written
    assert git("status", "--porcelain").stdout == before


def test_make_assets_copies_the_committed_figures_with_an_index_of_only_them(tmp_path, capsys):
    from figures import assets
    build, dest = tmp_path / "build", tmp_path / "assets"
    os.makedirs(build)
    os.makedirs(dest)
    for name in ("average_face.png", "random_walk.gif", "random_walk.mp4", "sample_grid.png"):
        (build / name).write_bytes(b"new " + name.encode())
    entry = lambda name, figure: {"file": name, "kind": name[-3:], "caption": "c", "figure": figure}  # noqa: E731
    utils.write_json(str(build / "figures.json"), {
        "seed": 0, "figures": [entry("average_face.png", "average_face"), entry("random_walk.gif", "random_walk"),
                               entry("random_walk.mp4", "random_walk"), entry("missing.png", "option0")],
        "skipped": [{"figure": "training_progression", "reason": "no training grids"},
                    {"figure": "turing_test", "reason": "no real faces"}]})
    for name in ("training_progression.gif", "average_face.png"):  # committed before; the movie was not redrawn
        (dest / name).write_bytes(b"old " + name.encode())
    utils.write_json(str(dest / "figures.json"), {"figures": [
        entry("training_progression.gif", "training_progression"), entry("average_face.png", "average_face"),
        entry("gone.png", "gone")]})
    result = assets.publish(str(build), str(dest))
    assert result == {"copied": ["average_face.png", "random_walk.mp4"], "kept": ["training_progression.gif"],
                      "left_out": ["random_walk.gif"]}
    assert sorted(os.listdir(dest)) == ["average_face.png", "figures.json", "random_walk.mp4", "sample_grid.png",
                                        "training_progression.gif"]
    assert (dest / "average_face.png").read_bytes() == b"new average_face.png"
    assert (dest / "training_progression.gif").read_bytes() == b"old training_progression.gif"
    index = json.load(open(dest / "figures.json"))
    assert [e["file"] for e in index["figures"]] == ["average_face.png", "random_walk.mp4", "training_progression.gif"]
    assert all(os.path.isfile(dest / e["file"]) for e in index["figures"])  # only files that are there
    assert index["skipped"] == [{"figure": "turing_test", "reason": "no real faces"}] and index["seed"] == 0
    assert "kept the committed training_progression.gif: not redrawn (no training grids)" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="--visualize --sample_dir"):
        assets.publish(str(tmp_path / "nothing"), str(dest))
