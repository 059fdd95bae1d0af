"""diffuse: train, sample and evaluate denoising diffusion models on low-dimensional data.

The same C++ engine as the `diffuse` command, with the same defaults and the same numbers: a model
trained here samples the same bits as `diffuse sample` for the same seed and thread count.

    import diffuse
    x = diffuse.make_shape("moons", n=10000, seed=1)    # (10000, 2) float32
    model = diffuse.train(x, epochs=200, progress=True)  # any (N, D) array, a CSV path or a shape
    y = model.sample(5000, seed=0)                       # (5000, D), in the data's units
    print(diffuse.evaluate(y, "moons"))                  # `diffuse eval --json`; train=x: copy_share
    model.save("moons.safetensors")                      # `diffuse sample moons.safetensors ...`

Bad input raises ValueError (or TypeError) with the line the CLI prints. Ctrl-C during `train`
stops after the current epoch and returns the model as it is then (`model.finished` is False;
saving it gives a checkpoint that `train(resume=...)` continues).
"""
import inspect as _inspect
import sys as _sys
import warnings as _warnings

from ._diffuse import Model, load, shape_names
from ._diffuse import _evaluate, _make_shape, _train
from ._diffuse import (evaluate_defaults, make_shape_defaults, sample_defaults,
                       trajectory_defaults, train_defaults, tutorial_settings)
from . import safetensors

__all__ = ["Model", "evaluate", "load", "make_shape", "shape_names", "train", "train_defaults",
           "tutorial_settings", "make_shape_defaults", "sample_defaults", "trajectory_defaults",
           "evaluate_defaults", "safetensors"]


def _with_defaults(name, impl, leading, defaults, doc):
    """A function `name(*leading, **defaults)` calling impl with every argument in that order.

    The defaults come from the library (the *_defaults() dicts), so Python's signature, the CLI's
    --help and the library's structs cannot drift apart."""
    P = _inspect.Parameter
    signature = _inspect.Signature(
        [P(k, P.POSITIONAL_OR_KEYWORD) for k in leading]
        + [P(k, P.POSITIONAL_OR_KEYWORD, default=v) for k, v in defaults.items()])

    def call(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)  # TypeError for an unknown keyword
        bound.apply_defaults()
        return impl(*bound.arguments.values())
    call.__name__ = call.__qualname__ = name
    call.__signature__ = signature
    call.__doc__ = doc
    return call


make_shape = _with_defaults(
    "make_shape", _make_shape, ["name"], {**make_shape_defaults(), "labels": False},
    """n points of a built-in shape (see shape_names()) as an (n, 2) float32 array: the points
    of `diffuse data NAME -n N --noise X --seed S`. labels=True returns (points, classes): the
    same points and each one's class as an int32 array (`diffuse data NAME --labels`; the
    mixture component, moon, circle, square or spiral turn).""")

evaluate = _with_defaults(
    "evaluate", _evaluate, ["samples", "reference"],
    {**evaluate_defaults(), "train": None, "label_column": None},
    """Scores samples (an (N, D) array) against a reference: a shape name, a CSV path or an
    array of rows. The dict of `diffuse eval --json` (the same library function and options);
    train (rows or a CSV path) adds copy_share. label_column (`eval --label-column`) adds
    per-class scores (classes[]: swd_ratio of each class's samples against its reference rows)
    and knn_accuracy (the share of samples whose 5 nearest reference rows' majority class is
    their own label): the samples are then (rows, labels), as Model.sample(..., return_labels=True)
    returns them, or a table (DataFrame) with that column; the reference is a shape with classes,
    a CSV with that column, (rows, labels) or such a table. Labels are class names (str) or
    ints.""")

Model.sample = _with_defaults(
    "sample", Model._sample, ["self"], sample_defaults(),
    """n samples (n, D) in the data's units: `diffuse sample` with the same options. The same seed
    and threads give the same bits. x0_clamp keeps each step's x0 prediction inside the training
    data's range (clip, threshold or off); round_integers rounds the columns that held only whole
    numbers. A model trained with label_column: class_ (`--class`; a class name, or an int for an
    integer class) draws that class, with classifier-free guidance scale `guidance` (1: the plain
    class, 0: unconditional, larger: more typical of the class); without class_ the classes come
    in their training proportions. return_labels=True returns (samples, each row's class name).""")

Model.sample_trajectory = _with_defaults(
    "sample_trajectory", Model._sample_trajectory, ["self"], trajectory_defaults(),
    """The DDPM reverse process as `diffuse animate` records it: (timesteps, states (K, n, D)),
    x_T first and the samples last, a state every `every` steps (0: about 100 states).""")

# Keywords of `diffuse train` (its long option names, '-' as '_') beyond the ones with a library
# default (the paths and the label column): these have None as their default.
_PATH_OPTIONS = ("resume", "log", "output", "label_column")


def _progress_printer(stream=None, every_s=2.0):
    """A plain progress line every `every_s` seconds and at the end (tqdm's stand-in)."""
    import time
    state = {"last": -1e9}

    def show(s):
        now = time.monotonic()
        if now - state["last"] >= every_s or s["epoch"] == s["epochs"]:
            state["last"] = now
            print(f"epoch {s['epoch']}/{s['epochs']}  loss {s['mean_loss']:.4f}  "
                  f"{s['steps_per_s']:.0f} steps/s", file=stream or _sys.stderr, flush=True)
    return show, (lambda: None)


def _progress_bar(total):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _progress_printer()
    bar = tqdm(total=total, unit="epoch")

    def show(s):
        bar.total = s["epochs"]
        bar.n = s["epoch"]
        bar.set_postfix(loss=f"{s['mean_loss']:.4f}", refresh=False)
        bar.refresh()
    return show, bar.close


def train(data=None, **options):
    model, interrupted = None, False
    bound = _SIGNATURE.bind(data, **options)  # TypeError for an unknown keyword, like any call
    given = {k: v for k, v in bound.arguments.items() if k != "data"}
    progress = given.pop("progress", None)
    quiet = given.pop("quiet", False)
    as_tutorial = given.pop("as_tutorial", False)
    for key, value in (("quiet", quiet), ("as_tutorial", as_tutorial)):
        if not isinstance(value, bool):
            raise TypeError(f"{key}: expected True or False, got {value!r}")
    close = lambda: None  # noqa: E731
    # The type first (1 is not True), then quiet: it silences the bar, not a caller's callable.
    if progress is None or progress is False:
        show = None
    elif progress is True:
        show = None if quiet else "bar"
    elif callable(progress):
        show = progress
    else:
        raise TypeError(f"progress: expected True, False, None or a callable, got {progress!r}")
    if show == "bar":
        show, close = _progress_bar(given.get("epochs", _DEFAULTS["epochs"]))

    def warn(message):
        _warnings.warn(message, RuntimeWarning, stacklevel=3)

    try:
        model, interrupted = _train(data, given, as_tutorial, show, warn)
    finally:
        close()
    if interrupted and not model.finished:
        _warnings.warn(
            f"interrupted: training stopped after epoch {model.history[-1]['epoch']}/"
            f"{model.history[-1]['epochs']}; the model holds that epoch's weights "
            "(save it, then train(resume=PATH) continues the run)", RuntimeWarning, stacklevel=2)
    return model


_DEFAULTS = train_defaults()
_SIGNATURE = _inspect.Signature(
    [_inspect.Parameter("data", _inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
    + [_inspect.Parameter(k, _inspect.Parameter.KEYWORD_ONLY, default=v)
       for k, v in _DEFAULTS.items()]
    + [_inspect.Parameter(k, _inspect.Parameter.KEYWORD_ONLY, default=None)
       for k in _PATH_OPTIONS]
    + [_inspect.Parameter(k, _inspect.Parameter.KEYWORD_ONLY, default=False)
       for k in ("as_tutorial", "quiet")]
    + [_inspect.Parameter("progress", _inspect.Parameter.KEYWORD_ONLY, default=None)])
train.__signature__ = _SIGNATURE
train.__doc__ = """Trains a model on `data` and returns it.

data: an (N, D) array of real numbers (copied once, into the run's float32 row-major buffer,
    which the run then standardizes in place; your array is never modified), a CSV path (str or
    os.PathLike), or a built-in shape name (see shape_names()). Data are standardized per column
    (unless standardize=False); samples come back in the data's units. None with resume=PATH.
Keywords: every `diffuse train` option under its long name with '-' as '_' and the same default
    (see train_defaults()): points, noise, updates, epochs, batch_size, standardize, lr, steps,
    schedule, beta_start, beta_end, hidden, model, depth, fourier_features (K: the resmlp
    network also sees sin(2^k x), cos(2^k x) of every coordinate for k < K; 0: none), predict,
    loss_weighting, snr_gamma,
    label_column (a CSV's or DataFrame's column holding each row's class: a class-conditional
    model, see Model.sample's class_), label_dropout, seed, threads, grad_clip, ema, warmup, lr_schedule, lr_min, checkpoint_every,
    snapshot_every, snapshot_dir, snapshot_points (the reverse process drawn as
    snapshot_dir/reverse_epoch_NNNN.png every N epochs and after the last, as `diffuse train`
    draws it), resume, log, output (the checkpoint path; nothing is written without it, and log
    needs it), as_tutorial (the tutorial's settings for every keyword not given), quiet (no
    progress bar; a progress callable is still called).
resume=PATH continues a stopped run; a run trained on an array needs the same array again:
    train(x, resume=PATH). As with `diffuse train --resume`, a keyword given with resume must be
    the stored run's value (ValueError naming it otherwise), except epochs, updates, threads,
    checkpoint_every, the snapshots, log and output.
progress: a callable receiving each epoch's statistics (a dict: epoch, epochs, mean_loss,
    last_loss, steps, seconds, steps_per_s), or True for a tqdm bar (a plain line every 2 s
    when tqdm is not installed).
Ctrl-C stops after the current epoch; the model is returned with finished == False.
Results depend only on the options, the seed and the thread count.
"""
