"""The Python module against the `diffuse` command: same defaults, same bits, same error lines;
Ctrl-C, the GIL, progress and the safetensors reader. Small runs only (the suite is part of
`make test`)."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import diffuse
from diffuse import safetensors

CLI = os.environ.get("DIFFUSE_CLI") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "release", "diffuse")
SMALL = dict(points=1000, epochs=3, hidden=16, seed=2)


def cli(*args, ok=True):
    r = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def cli_options(options):
    out = []
    for k, v in options.items():
        out += ["-n" if k == "points" else "--" + k.replace("_", "-"), v]
    return out


def read_csv(path):
    return np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)


def cli_error(*args):
    r = cli(*args, ok=False)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert line.startswith("diffuse: error: ")
    return line[len("diffuse: error: "):]


# ---- one set of defaults ---------------------------------------------------------------------

def test_every_train_keyword_has_the_cli_option_and_its_default():
    help_text = cli("train", "--help").stdout
    for key, value in diffuse.train_defaults().items():
        option = "-n,--points" if key == "points" else "--" + key.replace("_", "-")
        line = next((l.split() for l in help_text.splitlines() if l.split()[:1] == [option]),
                    None)
        assert line is not None, f"{option} missing from `diffuse train --help`"
        shown = line[1].split("=", 1)[1]  # "--lr FLOAT=0.002"
        if isinstance(value, bool):
            assert shown == str(value).lower(), (key, shown, value)
        elif isinstance(value, float):
            assert float(shown) == value, (key, shown, value)
        else:
            assert shown == str(value), (key, shown, value)
    tutorial = diffuse.tutorial_settings()
    assert (tutorial["beta_end"], tutorial["lr"], tutorial["ema"]) == (0.02, 1e-3, 0.0)
    # A run draws 100,000 points of a shape; the tutorial's run its 10,000, no input features.
    assert diffuse.train_defaults()["points"] == 100000
    assert (tutorial["points"], tutorial["fourier_features"]) == (10000, 0)


def test_train_keywords_and_cli_options_are_the_same_set_both_ways():
    import inspect
    help_text = cli("train", "--help").stdout
    options = set()
    for line in help_text.splitlines():
        words = line.split()
        if words and words[0].startswith("-"):
            long = [w for w in words[0].split(",") if w.startswith("--")]
            options.add(long[0][2:].replace("-", "_"))
    options -= {"help"}
    keywords = set(inspect.signature(diffuse.train).parameters) - {"progress"}
    assert keywords - options == set(), "Python keywords that `diffuse train` lacks"
    assert options - keywords == set(), "`diffuse train` options that Python lacks"


def help_defaults(*command):
    """{keyword: the default `diffuse COMMAND --help` shows (None for a flag)} under Python's
    names: the long option with '-' as '_', and -n,--points as n."""
    shown = {}
    for line in cli(*command, "--help").stdout.splitlines():
        words = line.split()
        if not words or not words[0].startswith("-"):
            continue
        names = words[0].split(",")
        key = "n" if "-n" in names else [w for w in names if w.startswith("--")][0][2:]
        default = words[1].split("=", 1)[1] if len(words) > 1 and "=" in words[1] else None
        shown[key.replace("-", "_")] = default
    shown.pop("help", None)
    return shown


def assert_same_default(key, shown, value):
    if isinstance(value, bool):
        assert shown is None and value is False, (key, shown, value)  # a flag, off by default
    elif isinstance(value, float):
        assert float(shown) == value, (key, shown, value)
    else:
        assert shown == str(value), (key, shown, value)


@pytest.mark.parametrize("function, leading, command, cli_only", [
    (diffuse.make_shape, ["name"], ["data"], {"output", "list"}),
    (diffuse.Model.sample, ["self"], ["sample"], {"output"}),
    (diffuse.Model.sample_trajectory, ["self"], ["animate"],
     {"output", "size", "frame_ms", "hold_ms", "sampler", "nfe", "spacing", "eta", "variance"}),
    (diffuse.evaluate, ["samples", "reference"], ["eval"], {"against", "json"}),
])
def test_every_keyword_default_is_the_cli_default(function, leading, command, cli_only):
    import inspect
    parameters = inspect.signature(function).parameters
    assert list(parameters)[:len(leading)] == leading
    # class_ is --class (`class` is a Python keyword); return_labels is Python's own.
    keywords = {k.rstrip("_"): p.default for k, p in parameters.items()
                if k not in leading and k != "return_labels"}
    shown = help_defaults(*command)
    assert set(shown) - set(keywords) == cli_only, "CLI options that Python lacks"
    for key, value in keywords.items():
        # eval --train FILE and --label-column NAME, sample --class NAME: no default
        if key in ("train", "class", "label_column"):
            assert value is None and shown[key] is None
            continue
        assert key in shown, f"{key}: no such option in `diffuse {command[0]}`"
        assert_same_default(key, shown[key], value)
    # The defaults are the library's dicts, and they are real values (not all zero).
    sample = diffuse.sample_defaults()
    assert (sample["n"], sample["x0_clamp"]) == (10000, "clip")
    assert diffuse.trajectory_defaults()["n"] == 2000
    evaluate = diffuse.evaluate_defaults()
    assert (evaluate["pairs"], evaluate["seed"]) == (384, 1000)
    assert diffuse.make_shape_defaults() == {"n": 10000, "noise": 0.1, "seed": 0}


def test_make_shape_is_the_cli_data():
    x = diffuse.make_shape("moons", n=500, noise=0.1, seed=3)
    assert x.shape == (500, 2) and x.dtype == np.float32 and x.flags.c_contiguous


def test_make_shape_equals_the_cli_file(tmp_path):
    cli("data", "swiss_roll", "-n", 300, "--seed", 4, "-o", tmp_path / "d.csv")
    np.testing.assert_array_equal(diffuse.make_shape("swiss_roll", n=300, seed=4),
                                  read_csv(tmp_path / "d.csv"))


def test_make_shape_labels_are_the_cli_label_column(tmp_path):
    x, y = diffuse.make_shape("8gaussians", n=400, seed=6, labels=True)
    assert y.dtype == np.int32 and y.shape == (400,)
    np.testing.assert_array_equal(x, diffuse.make_shape("8gaussians", n=400, seed=6))
    cli("data", "8gaussians", "-n", 400, "--seed", 6, "--labels", "-o", tmp_path / "l.csv")
    table = np.loadtxt(tmp_path / "l.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 2].astype(np.int32), y)
    # Each point is nearest its own component's centre (angle 2 pi k / 8, radius 2).
    centres = 2 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)
    nearest = np.argmin(((x[:, None, :] - centres[None]) ** 2).sum(-1), 1)
    assert (nearest == y).mean() > 0.99
    with pytest.raises(ValueError, match="--labels: swiss_roll has no natural classes"):
        diffuse.make_shape("swiss_roll", labels=True)


# ---- CLI and Python give the same bits -------------------------------------------------------

@pytest.fixture(scope="module")
def cli_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    path = d / "m.safetensors"
    cli("train", "--data", "moons", *cli_options(SMALL), "-q", "-o", path)
    return path


@pytest.mark.parametrize("threads", [1, 2])
def test_a_cli_checkpoint_samples_the_same_bits_in_python(cli_model, tmp_path, threads):
    out = tmp_path / "s.csv"
    cli("sample", cli_model, "-n", 700, "--seed", 9, "--threads", threads, "-o", out)
    model = diffuse.load(str(cli_model))
    np.testing.assert_array_equal(model.sample(700, seed=9, threads=threads), read_csv(out))


def test_python_training_is_the_cli_training_and_the_cli_samples_it(cli_model, tmp_path):
    path = tmp_path / "py.safetensors"
    model = diffuse.train("moons", **SMALL, output=path)
    assert model.finished and model.epochs == 3 and len(model.history) == 3
    want = safetensors.state_dict(cli_model)
    got = model.state_dict()
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    out = tmp_path / "s.csv"
    cli("sample", path, "-n", 400, "--seed", 1, "--sampler", "ddim", "--nfe", 20, "-o", out)
    np.testing.assert_array_equal(model.sample(400, seed=1, sampler="ddim", nfe=20),
                                  read_csv(out))
    # --spacing reaches the sampler the same way; even spacing evaluates other timesteps.
    cli("sample", path, "-n", 400, "--seed", 1, "--sampler", "dpmpp2m", "--nfe", 10,
        "--spacing", 1, "-o", out)
    even = model.sample(400, seed=1, sampler="dpmpp2m", nfe=10, spacing=1.0)
    np.testing.assert_array_equal(even, read_csv(out))
    assert not np.array_equal(even, model.sample(400, seed=1, sampler="dpmpp2m", nfe=10))
    # "logsnr" by name, as on the command line; it is DPM-Solver++'s own.
    cli("sample", path, "-n", 400, "--seed", 1, "--sampler", "ddim", "--nfe", 10,
        "--spacing", "logsnr", "-o", out)
    np.testing.assert_array_equal(
        model.sample(400, seed=1, sampler="ddim", nfe=10, spacing="logsnr"), read_csv(out))
    np.testing.assert_array_equal(
        model.sample(400, seed=1, sampler="dpmpp2m", nfe=10, spacing="logsnr"),
        model.sample(400, seed=1, sampler="dpmpp2m", nfe=10))
    log = np.loadtxt(tmp_path / "py.log.csv", delimiter=",", skiprows=1)
    assert log[:, 0].tolist() == [1, 2, 3]


def test_two_threads_train_the_cli_weights_too(tmp_path):
    opts = dict(points=800, epochs=2, hidden=16, seed=4, threads=2)
    cli("train", "--data", "circles", *cli_options(opts), "-q", "-o", tmp_path / "c.safetensors")
    ref = safetensors.state_dict(tmp_path / "c.safetensors")
    for name, value in diffuse.train("circles", **opts).state_dict().items():
        np.testing.assert_array_equal(value, ref[name], err_msg=name)


def test_an_array_trains_like_the_same_csv(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(600, 3)) * [1.0, 5.0, 0.2] + [0.0, 3.0, -1.0]).astype(np.float32)
    np.savetxt(tmp_path / "x.csv", x, delimiter=",", fmt="%.9g", header="a,b,c", comments="")
    opts = dict(epochs=2, hidden=16, batch_size=64, seed=5)
    cli("train", "--data", tmp_path / "x.csv", *cli_options(opts), "-q",
        "-o", tmp_path / "c.safetensors")
    before = x.copy()
    model = diffuse.train(x, **opts)
    np.testing.assert_array_equal(x, before)  # standardized in the library's copy only
    ref = safetensors.state_dict(tmp_path / "c.safetensors")
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, ref[name], err_msg=name)
    # Non-float32 or strided input is converted, with the same result.
    again = diffuse.train(np.asfortranarray(x.astype(np.float64)), **opts)
    np.testing.assert_array_equal(again.sample(50, seed=3), model.sample(50, seed=3))
    y = model.sample(2000, seed=1)
    assert y.shape == (2000, 3) and y.dtype == np.float32
    # Trained on standardized columns, sampled back in the data's units.
    np.testing.assert_allclose(model.mean, x.astype(np.float64).mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(model.std, x.astype(np.float64).std(axis=0), rtol=1e-6)
    assert model.columns == []  # a bare array has no column names
    assert diffuse.train(tmp_path / "x.csv", **opts).columns == ["a", "b", "c"]

    class Table:  # a DataFrame's duck type: an array with named columns
        columns = ["p", "q", "r"]

        def __array__(self, dtype=None):
            return x

    assert diffuse.train(Table(), **opts).columns == ["p", "q", "r"]


def test_a_conditional_model_trains_on_an_array_whose_label_column_a_table_names():
    # Three blobs in 3-D, 150 / 100 / 50 rows, their class (0, 1, 2) the array's last column. A
    # bare ndarray has no column names, so a table names them (a DataFrame, or its duck type).
    centres = np.array([[-3.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 3.0, 3.0]])
    k = np.repeat(np.arange(3), [150, 100, 50])
    x = centres[k] + 0.2 * np.random.default_rng(5).normal(size=(300, 3))
    rows = np.column_stack([x, k])  # (300, 4) float64

    class Table:
        columns = ["a", "b", "c", "kind"]

        def __array__(self, dtype=None):
            return rows

    model = diffuse.train(Table(), label_column="kind", quiet=True, **COND)
    assert model.classes == ["0", "1", "2"] and model.class_counts == [150, 100, 50]
    assert model.columns == ["a", "b", "c"] and model.dim == 3  # the label is not a feature
    for c in range(3):
        s = model.sample(400, seed=6, sampler="ddim", nfe=20, class_=c, guidance=2.0)
        assert s.shape == (400, 3)
        nearest = np.argmin(((s[:, None, :] - centres[None]) ** 2).sum(-1), 1)
        assert (nearest == c).mean() > 0.95, (c, np.bincount(nearest, minlength=3))
        assert np.abs(np.median(s, 0) - centres[c]).max() < 0.75, (c, np.median(s, 0))
    # Without class_, the classes come in their training shares and each row where its label says.
    s, labels = model.sample(1000, seed=7, sampler="ddim", nfe=20, return_labels=True)
    shares = [np.mean(labels == str(c)) for c in range(3)]
    np.testing.assert_allclose(shares, [0.5, 1 / 3, 1 / 6], atol=0.05)
    nearest = np.argmin(((s[:, None, :] - centres[None]) ** 2).sum(-1), 1)
    assert (nearest.astype(str) == labels).mean() > 0.9
    # The bare array cannot name its label column: the CLI's line says so.
    with pytest.raises(ValueError, match="^--label-column: array has no column \"kind\" \\(it has "
                                         "no column names\\)$"):
        diffuse.train(rows, label_column="kind", quiet=True, **COND)


def test_as_tutorial_is_the_cli_flag(tmp_path):
    opts = dict(points=600, epochs=2, hidden=16, seed=1, lr=3e-3)
    cli("train", "--data", "circles", *cli_options(opts), "--as-tutorial", "-q",
        "-o", tmp_path / "t.safetensors")
    model = diffuse.train("circles", **opts, as_tutorial=True)
    assert model.beta_end == 0.02
    ref = safetensors.state_dict(tmp_path / "t.safetensors")
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, ref[name], err_msg=name)


def test_snapshots_are_the_files_the_cli_draws(tmp_path):
    opts = dict(points=300, epochs=3, hidden=8, steps=20, seed=4)
    snaps = dict(snapshot_every=2, snapshot_points=150)
    (tmp_path / "cli").mkdir()
    (tmp_path / "py").mkdir()
    cli("train", "--data", "moons", *cli_options({**opts, **snaps}), "--snapshot-dir",
        tmp_path / "cli", "-q", "-o", tmp_path / "m.safetensors")
    diffuse.train("moons", **opts, **snaps, snapshot_dir=tmp_path / "py")
    names = sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert names == ["reverse_epoch_0002.png", "reverse_epoch_0003.png"]  # every 2 and the last
    assert sorted(p.name for p in (tmp_path / "py").iterdir()) == names
    for name in names:
        png = (tmp_path / "py" / name).read_bytes()
        assert png[1:4] == b"PNG" and png == (tmp_path / "cli" / name).read_bytes(), name
    assert (tmp_path / "py" / names[0]).read_bytes() != (tmp_path / "py" / names[1]).read_bytes()
    # Bad snapshot options: the CLI's line, before any training.
    nope = tmp_path / "nope"
    for prefix, keywords in [
            ("--snapshot-every: expected >= 0", dict(snapshot_every=-1)),
            (f"--snapshot-dir {nope}: no such folder", dict(snapshot_every=1, snapshot_dir=nope)),
            ("--snapshot-points: expected at least 1", dict(snapshot_every=1, snapshot_points=0))]:
        keywords.setdefault("snapshot_dir", tmp_path / "py")
        message = cli_error("train", "--data", "moons", *cli_options(keywords),
                            "-o", tmp_path / "x.safetensors")
        assert message.startswith(prefix), message
        with pytest.raises(ValueError) as e:
            diffuse.train("moons", points=300, epochs=1, **keywords)
        assert str(e.value) == message
    assert not (tmp_path / "x.safetensors").exists()


def test_evaluate_has_the_keys_and_numbers_of_eval_json(cli_model, tmp_path):
    import json
    out = tmp_path / "s.csv"
    cli("sample", cli_model, "-n", 500, "--seed", 2, "-o", out)
    want = json.loads(cli("eval", out, "--against", "moons", "--json").stdout)
    got = diffuse.evaluate(read_csv(out), "moons")
    assert got == want  # one library function behind both, the same JSON


def test_evaluate_label_column_scores_each_class_like_eval(tmp_path):
    # An honest labelled draw of 8gaussians (modes 1.53 apart, noise 0.1) as the samples.
    x, k = diffuse.make_shape("8gaussians", n=2000, seed=11, labels=True)
    opts = dict(pairs=16, directions=8)
    honest = diffuse.evaluate((x, k), "8gaussians", label_column="label", **opts)
    cli("data", "8gaussians", "-n", 2000, "--seed", 11, "--labels", "-o", tmp_path / "s.csv")
    want = json.loads(cli("eval", tmp_path / "s.csv", "--against", "8gaussians", "--label-column",
                          "label", "--json", "--pairs", 16, "--directions", 8).stdout)
    assert honest == want  # one library function behind both, the same JSON
    assert honest["label_column"] == "label"
    assert [c["name"] for c in honest["classes"]] == [str(c) for c in range(8)]
    assert [c["n"] for c in honest["classes"]] == np.bincount(k, minlength=8).tolist()
    assert honest["knn_accuracy"] > 0.98  # every point lies among its own mode
    assert max(c["swd_ratio"] for c in honest["classes"]) < 2.0
    # The same points with their labels shuffled: the 5-NN vote agrees by chance (1/8), and each
    # "class" is now spread over all eight modes, far from its reference rows.
    shuffled = np.random.default_rng(0).permutation(k)
    chance = diffuse.evaluate((x, shuffled), "8gaussians", label_column="label", **opts)
    assert abs(chance["knn_accuracy"] - 1 / 8) < 0.04
    assert min(c["swd_ratio"] for c in chance["classes"]) > 20.0
    assert chance["swd_ratio"] == honest["swd_ratio"]  # the whole is the same set of points

    # A reference of rows in memory: (rows, labels) pairs (str or int labels) or a table with the
    # label column (a DataFrame's duck type), scored as the same rows read from a CSV file.
    ref, ref_k = diffuse.make_shape("8gaussians", n=1000, seed=12, labels=True)
    cli("data", "8gaussians", "-n", 1000, "--seed", 12, "--labels", "-o", tmp_path / "r.csv")
    from_file = diffuse.evaluate((x, k.astype(str)), tmp_path / "r.csv", label_column="label",
                                 **opts)

    class Table:
        columns = ["x", "y", "label"]

        def __array__(self, dtype=None):
            return np.column_stack([ref, ref_k]).astype(np.float32)

    for reference in ((ref, ref_k), (ref, ref_k.astype(str)), Table()):
        got = diffuse.evaluate((x, k), reference, label_column="label", **opts)
        for key in ("knn_accuracy", "swd_ratio", "classes"):
            assert got[key] == from_file[key], key
    assert from_file["knn_accuracy"] > 0.98
    assert max(c["swd_ratio"] for c in from_file["classes"]) < 2.0

    # The CLI's lines for a class the reference lacks, and a missing label column.
    with pytest.raises(ValueError, match="^samples: the samples' class \"9\" \\(1 rows\\) is not a "
                                         "class of 8gaussians \\(its classes: 0, 1, 2"):
        diffuse.evaluate((x, np.where(np.arange(len(k)) == 0, 9, k)), "8gaussians",
                         label_column="label", **opts)
    with pytest.raises(ValueError, match="^--label-column: .*r.csv has no column 'digit'"):
        diffuse.evaluate((x, k), tmp_path / "r.csv", label_column="digit", **opts)
    with pytest.raises(TypeError, match="samples: with label_column, expected \\(rows, labels\\)"):
        diffuse.evaluate(x, "8gaussians", label_column="label")
    with pytest.raises(ValueError, match="samples: 5 labels for 2000 rows"):
        diffuse.evaluate((x, k[:5]), "8gaussians", label_column="label")


# ---- errors: the CLI's line, as ValueError / TypeError -----------------------------------------

@pytest.mark.parametrize("keyword, value, cli_args", [
    ("epochs", -1, ["--epochs", -1]),
    ("updates", 0, ["--updates", 0]),
    ("lr", -1.0, ["--lr", -1]),
    ("beta_end", 1.5, ["--beta-end", 1.5]),
    ("schedule", "cubic", ["--schedule", "cubic"]),
    ("lr_schedule", "step", ["--lr-schedule", "step"]),
    ("model", "transformer", ["--model", "transformer"]),
    ("predict", "score", ["--predict", "score"]),
    ("loss_weighting", "p2", ["--loss-weighting", "p2"]),
    ("batch_size", 5000, ["-n", 1000, "--batch-size", 5000]),
])
def test_bad_values_raise_value_error_with_the_cli_message(tmp_path, keyword, value, cli_args):
    message = cli_error("train", "--data", "moons", *cli_args, "-o", tmp_path / "m.safetensors")
    with pytest.raises(ValueError) as e:
        diffuse.train("moons", points=1000, **{keyword: value})
    assert str(e.value) == message


def test_wrong_types_and_names_raise_type_error():
    with pytest.raises(TypeError, match="--epochs: expected an integer"):
        diffuse.train("moons", epochs="many")
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        diffuse.train("moons", epoch=3)
    with pytest.raises(TypeError, match="data: expected an \\(N, D\\) array of numbers"):
        diffuse.train(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="data: expected an \\(N, D\\) array, got 1"):
        diffuse.train(np.zeros(10, dtype=np.float32))
    with pytest.raises(ValueError, match="row 2, column 1 is not a finite number"):
        diffuse.train(np.array([[0.0, 1.0], [np.nan, 2.0]]))


def test_out_of_range_integers_are_value_errors_and_bools_type_errors():
    with pytest.raises(ValueError, match=r"^--seed: expected an integer from 0 to 18446744073709551615, got -1$"):
        diffuse.train("moons", seed=-1)
    with pytest.raises(ValueError, match=r"^--epochs: expected an integer from -2147483648 to 2147483647, got 1099511627776$"):
        diffuse.train("moons", epochs=2**40)
    with pytest.raises(TypeError, match="--epochs: expected an integer, got True"):
        diffuse.train("moons", epochs=True)
    with pytest.raises(TypeError, match="--lr: expected a number, got 'fast'"):
        diffuse.train("moons", lr="fast")
    with pytest.raises(TypeError, match="data: expected an \\(N, D\\) array of numbers"):
        diffuse.train(np.ones((10, 2), dtype=np.complex64))
    model = diffuse.train("moons", points=300, epochs=np.int64(1), hidden=8)
    assert model.epochs == 1
    with pytest.raises(ValueError) as e:
        model.sample(2**40)
    assert "\n" not in str(e.value) and str(e.value).startswith("-n: expected an integer from")
    with pytest.raises(ValueError, match="--seed: expected an integer from 0"):
        model.sample(10, seed=-3)
    with pytest.raises(TypeError, match="-n: expected an integer, got 2.5"):
        diffuse.make_shape("moons", n=2.5)


def test_log_without_output_is_a_usage_error(tmp_path):
    with pytest.raises(ValueError, match="^--log: needs a checkpoint path"):
        diffuse.train("moons", points=300, epochs=1, hidden=8, log=tmp_path / "l.csv")
    assert not (tmp_path / "l.csv").exists()


def test_paths_may_be_path_objects(tmp_path):
    model = diffuse.train("moons", points=300, epochs=1, hidden=8)
    path = tmp_path / "m.safetensors"
    model.save(path)
    again = diffuse.load(path)
    np.testing.assert_array_equal(again.sample(50, seed=1), model.sample(50, seed=1))
    ref = diffuse.make_shape("moons", n=400, seed=5)
    np.savetxt(tmp_path / "r.csv", ref, delimiter=",", fmt="%.9g", header="x,y", comments="")
    y = model.sample(400, seed=2)
    got = diffuse.evaluate(y, tmp_path / "r.csv")
    assert got == diffuse.evaluate(y, str(tmp_path / "r.csv"))
    with pytest.raises(TypeError, match="path: expected a path"):
        model.save(3)


def test_corrupt_epochs_metadata_names_the_file(tmp_path):
    path = tmp_path / "m.safetensors"
    diffuse.train("moons", points=300, epochs=1, hidden=8).save(path)
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    header["__metadata__"]["info.epochs"] = "many"
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + size:])
    with pytest.raises(ValueError, match=r"m.safetensors: corrupt metadata: 'epochs'") as e:
        diffuse.load(path)
    assert "\n" not in str(e.value) and "stoi" not in str(e.value)


def test_a_float64_array_is_converted_without_a_float32_temporary():
    import tracemalloc
    model = diffuse.train("moons", points=300, epochs=1, hidden=8)
    x = np.random.default_rng(0).normal(size=(400000, 2))  # float64; as float32: 3.2 MB
    want = model.predict_noise(x.astype(np.float32), 5)
    tracemalloc.start()
    try:
        got = model.predict_noise(x, 5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, want)
    assert peak < 1_000_000, peak  # numpy's allocations are traced; the library's are not


def test_bad_names_and_files_give_the_cli_line(tmp_path):
    with pytest.raises(ValueError) as e:
        diffuse.make_shape("heart")
    assert str(e.value) == cli_error("data", "heart", "-o", tmp_path / "d.csv")
    missing = str(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="missing.safetensors"):
        diffuse.load(missing)
    model = diffuse.train("moons", points=300, epochs=1, hidden=8)
    with pytest.raises(ValueError, match='--sampler: unknown sampler "euler"'):
        model.sample(10, sampler="euler")
    with pytest.raises(ValueError, match="-n: expected at least 1 sample"):
        model.sample(0)
    with pytest.raises(ValueError, match="--variance: only --sampler ddpm uses it"):
        model.sample(10, sampler="ddim", nfe=10, variance="beta")
    with pytest.raises(ValueError, match="--spacing: expected logsnr, 0 .the sampler's own. or a "
                       "power from 1 to 4, got 0.5"):
        model.sample(10, sampler="ddim", nfe=10, spacing=0.5)
    # -1 is the value "logsnr" stands for inside: as a number it is refused, not taken for it.
    with pytest.raises(ValueError, match="--spacing: expected logsnr.*got \"-1.0\""):
        model.sample(10, sampler="dpmpp2m", nfe=10, spacing=-1.0)


# ---- progress, Ctrl-C, the GIL -------------------------------------------------------------

def test_progress_gets_every_epoch_and_true_prints_without_tqdm(capsys):
    seen = []
    diffuse.train("moons", points=500, epochs=3, hidden=8, progress=seen.append)
    assert [s["epoch"] for s in seen] == [1, 2, 3]
    assert {"mean_loss", "steps", "seconds", "steps_per_s", "epochs"} <= set(seen[0])
    diffuse.train("moons", points=500, epochs=2, hidden=8, progress=True)
    assert "2/2" in capsys.readouterr().err  # tqdm's bar or the plain printer's line


def test_progress_type_is_checked_before_quiet(capsys):
    seen = []
    diffuse.train("moons", points=300, epochs=2, hidden=8, progress=seen.append, quiet=True)
    assert [s["epoch"] for s in seen] == [1, 2]  # quiet hides the bar, not the caller's callable
    diffuse.train("moons", points=300, epochs=2, hidden=8, progress=True, quiet=True)
    assert "2/2" not in capsys.readouterr().err
    with pytest.raises(TypeError, match="progress: expected True, False, None or a callable, got 1"):
        diffuse.train("moons", points=300, epochs=1, hidden=8, progress=1)
    with pytest.raises(TypeError, match="progress: expected"):
        diffuse.train("moons", points=300, epochs=1, hidden=8, progress=0, quiet=True)


def test_an_exception_from_a_signal_handler_stops_training_and_propagates():
    def alarm(signum, frame):
        raise TimeoutError("took too long")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(TimeoutError, match="took too long"):
            diffuse.train("moons", points=500, epochs=20000, hidden=8)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_a_run_on_an_array_resumes_with_the_same_array(tmp_path):
    x = diffuse.make_shape("circles", n=600, seed=3) * 4.0 + 1.0
    opts = dict(epochs=4, hidden=16, seed=3)
    full = diffuse.train(x, **opts)

    def stop_at_two(s):
        if s["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.warns(RuntimeWarning, match="interrupted"):
        stopped = diffuse.train(x, **opts, progress=stop_at_two)
    path = tmp_path / "stopped.safetensors"
    stopped.save(path)
    with pytest.raises(ValueError, match="trained on an array; pass the same array"):
        diffuse.train(resume=path)
    resumed = diffuse.train(x, resume=path)
    assert resumed.finished and resumed.epochs == 4
    np.testing.assert_array_equal(resumed.sample(200, seed=1), full.sample(200, seed=1))


def test_an_exception_in_progress_stops_training_and_propagates():
    def fail(s):
        raise RuntimeError("stop here")
    with pytest.raises(RuntimeError, match="stop here"):
        diffuse.train("moons", points=500, epochs=5, hidden=8, progress=fail)


def test_ctrl_c_stops_after_the_epoch_with_the_model_intact_and_it_resumes(tmp_path):
    opts = dict(points=800, epochs=6, hidden=16, seed=7, ema=0.9)
    full = diffuse.train("moons", **opts)

    def interrupt_at_two(s):
        if s["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C in a notebook

    with pytest.warns(RuntimeWarning, match="interrupted: training stopped after epoch 2/6"):
        stopped = diffuse.train("moons", **opts, progress=interrupt_at_two)
    assert not stopped.finished and len(stopped.history) == 2
    assert stopped.sample(100, seed=0).shape == (100, 2)
    path = tmp_path / "stopped.safetensors"
    stopped.save(str(path))
    resumed = diffuse.train(resume=path, output=tmp_path / "done.safetensors")
    assert resumed.finished and resumed.epochs == 6
    np.testing.assert_array_equal(resumed.sample(300, seed=4), full.sample(300, seed=4))


def test_a_signal_from_elsewhere_stops_a_run_without_a_progress_callable():
    # As a notebook's interrupt button: SIGINT while the run is in C++ with the GIL released.
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.warns(RuntimeWarning, match="interrupted"):
            model = diffuse.train("moons", points=500, epochs=20000, hidden=8)
    finally:
        timer.cancel()
    assert not model.finished and 1 <= len(model.history) < 20000
    assert model.sample(10).shape == (10, 2)


def test_training_and_sampling_release_the_gil():
    counts = []
    done = threading.Event()

    def count():
        n = 0
        while not done.is_set():
            n += 1
        counts.append(n)

    t = threading.Thread(target=count)
    t.start()
    start = time.perf_counter()
    try:
        model = diffuse.train("moons", points=20000, epochs=1, hidden=64, batch_size=64)
        model.sample(20000, seed=0)
    finally:
        done.set()
        t.join()
    seconds = time.perf_counter() - start
    # Holding the GIL for one epoch and the whole sampling would leave the counter at a few
    # thousand (it runs only between calls); released, it counts all the while.
    assert counts[0] > 100000 * seconds, (counts[0], seconds)


# ---- files: safetensors without the safetensors package ------------------------------------

def test_the_small_safetensors_reader_reads_what_the_cli_writes(cli_model):
    tensors, meta = safetensors.load_file(cli_model)
    assert meta["format"] == "diffuse" and int(meta["hidden"]) == 16
    model = diffuse.load(str(cli_model))
    defaults = diffuse.train_defaults()
    assert (model.dim, model.hidden, model.steps, model.schedule) == (
        2, 16, defaults["steps"], defaults["schedule"])
    assert model.beta_end == diffuse.train_defaults()["beta_end"]
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(tensors[name], value, err_msg=name)


def test_the_reader_names_the_file_when_it_is_not_safetensors(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\xff" * 4)
    with pytest.raises(ValueError, match="bad.safetensors: not a safetensors file"):
        safetensors.load_file(bad)
    bad.write_bytes((10**9).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="runs past the end"):
        safetensors.load_file(bad)


# ---- the example ---------------------------------------------------------------------------

def test_the_tutorial_example_runs_and_its_pytorch_round_trip_agrees(tmp_path):
    pytest.importorskip("matplotlib")
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "tutorial.py")
    r = subprocess.run([sys.executable, example, "3", str(tmp_path)], capture_output=True,
                       text=True, env=dict(os.environ, MPLBACKEND="Agg"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "tutorial.png").stat().st_size > 10000
    assert "swd_ratio" in r.stdout
    if "PyTorch is not installed" not in r.stderr:
        assert "relative difference" in r.stdout, r.stdout


# ---- sampling options, resume: as the CLI ----------------------------------------------------

@pytest.fixture(scope="module")
def integer_model(tmp_path_factory):
    """A model of a table with a whole-number column (so rounding and the clamp have work)."""
    d = tmp_path_factory.mktemp("int")
    rng = np.random.default_rng(4)
    x = np.column_stack([rng.integers(0, 6, 800), rng.normal(size=800) * 2.0 + 1.0])
    np.savetxt(d / "t.csv", x, delimiter=",", fmt="%.9g", header="count,value", comments="")
    path = d / "t.safetensors"
    cli("train", "--data", d / "t.csv", "--epochs", 3, "--hidden", 16, "--seed", 1, "-q",
        "-o", path)
    return path


@pytest.mark.parametrize("clamp, rounding, threads", [
    ("clip", False, 1), ("off", True, 2), ("threshold", True, 1), ("off", False, 2)])
def test_x0_clamp_and_round_integers_sample_the_cli_bits(integer_model, tmp_path, clamp,
                                                         rounding, threads):
    out = tmp_path / "s.csv"
    cli("sample", integer_model, "-n", 600, "--seed", 5, "--threads", threads,
        "--x0-clamp", clamp, *(["--round-integers"] if rounding else []), "-o", out)
    y = diffuse.load(integer_model).sample(600, seed=5, threads=threads, x0_clamp=clamp,
                                           round_integers=rounding)
    np.testing.assert_array_equal(y, read_csv(out))
    whole = np.all(y[:, 0] == np.round(y[:, 0]))
    assert whole == rounding  # 3 epochs do not learn whole numbers: only rounding gives them


def test_the_clamp_keywords_change_the_samples(integer_model):
    model = diffuse.load(integer_model)
    clipped = model.sample(2000, seed=1)  # the default: clip to the training data's range
    free = model.sample(2000, seed=1, x0_clamp="off")
    assert clipped[:, 0].min() >= 0.0 and clipped[:, 0].max() <= 5.0
    assert not np.array_equal(clipped, free)
    assert free[:, 0].min() < 0.0 or free[:, 0].max() > 5.0  # an undertrained model strays


@pytest.mark.parametrize("keyword, value, option", [
    ("sampler", "euler", "--sampler"), ("variance", "lower", "--variance"),
    ("x0_clamp", "wrap", "--x0-clamp")])
def test_an_unknown_sampling_name_is_the_cli_line(integer_model, tmp_path, keyword, value, option):
    message = cli_error("sample", integer_model, option, value, "-o", tmp_path / "s.csv")
    assert message.startswith(f'{option}: unknown ') and "expected one of" in message
    with pytest.raises(ValueError) as e:
        diffuse.load(integer_model).sample(10, **{keyword: value})
    assert str(e.value) == message
    with pytest.raises(TypeError, match=f"^{option}: expected a string, got 3$"):
        diffuse.load(integer_model).sample(10, **{keyword: 3})


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
    """A resumable checkpoint: moons, stopped after epoch 2 of 4."""
    path = tmp_path_factory.mktemp("resume") / "stopped.safetensors"

    def stop_at_two(s):
        if s["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.warns(RuntimeWarning, match="interrupted"):
        model = diffuse.train("moons", points=600, epochs=4, hidden=16, seed=3,
                              progress=stop_at_two)
    model.save(path)
    return path


@pytest.mark.parametrize("keyword, value, cli_args", [
    ("lr", 0.5, ["--lr", 0.5]),
    ("hidden", 32, ["--hidden", 32]),
    ("points", 700, ["-n", 700]),
    ("schedule", "quadratic", ["--schedule", "quadratic"]),  # never the default
    ("epochs", 2, ["--epochs", 2]),
])
def test_resume_refuses_a_conflicting_keyword_with_the_cli_line(stopped_run, tmp_path, keyword,
                                                                value, cli_args):
    message = cli_error("train", "--resume", stopped_run, *cli_args,
                        "-o", tmp_path / "r.safetensors")
    assert message.startswith(cli_args[0] + ": ")
    with pytest.raises(ValueError) as e:
        diffuse.train(resume=str(stopped_run), **{keyword: value})
    assert str(e.value) == message


def test_resume_accepts_the_stored_values_and_the_changeable_ones(stopped_run, tmp_path):
    full = diffuse.train("moons", points=600, epochs=4, hidden=16, seed=3)
    # The stored values again, and --threads, which may change, resume as the CLI does.
    resumed = diffuse.train("moons", resume=stopped_run, points=600, hidden=16, seed=3, threads=1)
    assert resumed.finished and resumed.epochs == 4
    np.testing.assert_array_equal(resumed.sample(200, seed=1), full.sample(200, seed=1))
    message = cli_error("train", "--data", "circles", "--resume", stopped_run,
                        "-o", tmp_path / "r.safetensors")
    with pytest.raises(ValueError) as e:
        diffuse.train("circles", resume=stopped_run)
    assert str(e.value) == message and message.startswith("--data: ")
    longer = diffuse.train(resume=stopped_run, epochs=5)
    assert longer.epochs == 5


# ---- class-conditional models ------------------------------------------------------------------

def write_blobs(path, rows=(120, 80), seed=3):
    """Two well-separated labelled blobs, classes "left" and "right"."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        f.write("x,y,side\n")
        for name, cx, n in (("left", -3.0, rows[0]), ("right", 3.0, rows[1])):
            for _ in range(n):
                f.write(f"{cx + 0.2 * rng.normal():.6f},{0.2 * rng.normal():.6f},{name}\n")


COND = dict(model="resmlp", hidden=16, depth=1, steps=50, schedule="cosine", predict="v",
            updates=800, seed=1)


def test_a_conditional_model_samples_its_classes_like_the_cli(tmp_path):
    data = tmp_path / "blobs.csv"
    write_blobs(data)
    model = diffuse.train(str(data), label_column="side", label_dropout=0.2, quiet=True, **COND)
    assert model.classes == ["left", "right"] and model.class_counts == [120, 80]
    opts = {**COND, "label_column": "side", "label_dropout": 0.2}
    cli("train", "--data", data, *cli_options(opts), "-q", "-o", tmp_path / "m.safetensors")
    saved = diffuse.load(tmp_path / "m.safetensors")
    assert saved.state_dict().keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():  # the same training, bit for bit
        np.testing.assert_array_equal(saved.state_dict()[key], value)
    for name, sign in (("left", -1), ("right", 1)):
        x = model.sample(200, seed=4, sampler="ddim", nfe=20, class_=name, guidance=2.0)
        assert np.mean(np.sign(x[:, 0]) == sign) > 0.95
        cli("sample", tmp_path / "m.safetensors", "-n", 200, "--seed", 4, "--sampler", "ddim",
            "--nfe", 20, "--class", name, "--guidance", 2, "-o", tmp_path / "s.csv")
        np.testing.assert_array_equal(
            saved.sample(200, seed=4, sampler="ddim", nfe=20, class_=name, guidance=2.0),
            np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1, usecols=(0, 1),
                       dtype=np.float32))
    x, labels = model.sample(1000, seed=5, sampler="ddim", nfe=20, return_labels=True)
    assert set(labels) == {"left", "right"} and abs(np.mean(labels == "left") - 0.6) < 0.06
    assert np.mean((x[:, 0] < 0) == (labels == "left")) > 0.95
    with pytest.raises(ValueError, match="--guidance: needs --class"):
        model.sample(10, guidance=2.0)
    with pytest.raises(ValueError, match="left, right"):
        model.sample(10, class_="up")
    with pytest.raises(ValueError, match="--label-column"):
        diffuse.train(str(data), label_column="colour", quiet=True, **COND)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the short runs' warnings
def test_fourier_features_widen_the_first_layer_like_the_cli(tmp_path):
    assert diffuse.train_defaults()["fourier_features"] == 6
    opts = dict(model="resmlp", hidden=16, depth=1, steps=50, updates=60, seed=2,
                fourier_features=3)
    model = diffuse.train("moons", points=256, quiet=True, **opts)
    # D + E + 2 K D inputs: x, 32 time features, sin and cos of 3 octaves of both coordinates.
    assert model.state_dict()["inp.weight"].shape == (16, 2 + 32 + 12)
    cli("train", "--data", "moons", "-n", 256, *cli_options(opts), "-q",
        "-o", tmp_path / "m.safetensors")
    saved = diffuse.load(tmp_path / "m.safetensors")
    for key, value in model.state_dict().items():  # the same training, bit for bit
        np.testing.assert_array_equal(saved.state_dict()[key], value)
    plain = diffuse.train("moons", points=256, quiet=True, **{**opts, "fourier_features": 0})
    assert plain.state_dict()["inp.weight"].shape == (16, 2 + 32)
    with pytest.raises(ValueError, match="--fourier-features: expected 0..10"):
        diffuse.train("moons", quiet=True, **{**opts, "fourier_features": 11})
    # The tutorial's network has no features: the default does not get in its way.
    tutorial = diffuse.train("moons", points=256, updates=10, hidden=8, quiet=True,
                             as_tutorial=True)
    assert tutorial.state_dict()["lin1.lin.weight"].shape == (8, 2)
