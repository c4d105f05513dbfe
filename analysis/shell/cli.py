"""The ``segments`` command.

Problems with the user's input are printed as one paragraph and exit with status 2; add
``--debug`` to see the traceback. Ctrl-C exits with 130, SIGTERM (cleaned up the same way) with
143; another run writing the same folder gives 5, a full or read-only disk 6. Every write is
all-or-nothing, so on any failure the message says that the previous results (or output file)
were kept.
"""
from __future__ import annotations

import argparse
import signal
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from analysis.settings import Settings, load_settings
from analysis.errors import EXIT_BUG, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_NO_QUARTO, EXIT_RENDER, InputError  # noqa: F401
from analysis.errors import EXIT_BUSY, EXIT_TERMINATED, EXIT_WRITE, BusyError, WriteError  # noqa: F401
from analysis.shell.progress import Stages
from analysis.constants import REAL_CUSTOMERS, REAL_POPULATION



def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit status: 0 done, 1 unexpected error, 2 input error, 5 busy,
    6 cannot write, 130 Ctrl-C, 143 SIGTERM."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        with _sigterm_as_interrupt():
            return int(args.handler(args) or 0)
    except (BusyError, WriteError) as err:  # another run, or a full/read-only disk: not the input's fault
        if args.debug:
            raise
        print(f"segments: error: {err} {_notes(err)}".rstrip(), file=sys.stderr)
        return EXIT_BUSY if isinstance(err, BusyError) else EXIT_WRITE
    except Terminated as err:
        print(f"segments: terminated (SIGTERM). {_notes(err) or 'Nothing was written.'}", file=sys.stderr)
        return EXIT_TERMINATED
    except InputError as err:
        if args.debug:
            raise
        print(f"segments: error: {err} {_notes(err)}".rstrip(), file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt as err:
        print(f"segments: interrupted. {_notes(err) or 'Nothing was written.'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # a bug or a broken environment: keep the traceback, say what was kept
        if args.debug:
            raise
        traceback.print_exc()
        print(f"segments: unexpected error ({type(err).__name__}, details above). {_notes(err)}".rstrip(),
              file=sys.stderr)
        return EXIT_BUG


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler or ``kill``): cleaned up exactly like Ctrl-C."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into an exception, so every ``finally`` and atomic write cleans up as for Ctrl-C."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _notes(err: BaseException) -> str:
    """The notes ``_on_failure`` attached (what was kept), as one sentence or two."""
    return " ".join(getattr(err, "__notes__", ()))


@contextmanager
def _on_failure(note: str) -> Iterator[None]:
    """Attach ``note`` (what was kept) to any exception leaving the block, for ``main`` to print."""
    try:
        yield
    except BaseException as err:
        err.add_note(note)
        raise


def _kept_results(folder: Path) -> str:
    from analysis.constants import RESULTS_FILE
    if (folder / RESULTS_FILE).is_file():
        return f"The previous results in {folder} were kept."
    return f"No results were written to {folder}."


def _kept_file(path: Path) -> str:
    return f"The existing {path} was kept." if path.exists() else f"No file was written to {path}."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segments", description=(
        "Segment the population, compare customers to it and report whom to mail. "
        "Settings come from segments.toml, then SEGMENTS_* environment variables, then these flags."))
    parser.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo-data", help="write the synthetic demonstration files")
    demo.add_argument("--out", type=Path, required=True, help="folder to write the three files into")
    demo.add_argument("--population", type=int, default=REAL_POPULATION,
                      help=f"population rows (default {REAL_POPULATION:,})")
    demo.add_argument("--customers", type=int, default=REAL_CUSTOMERS,
                      help=f"customer rows (default {REAL_CUSTOMERS:,})")
    demo.add_argument("--seed", type=int, help="random seed (default 0; with --refresh-of, the previous seed + 1)")
    demo.add_argument("--refresh-of", type=Path, metavar="DIR",
                      help="write a later delivery of the demo data in DIR, with planted changes "
                           "(recorded in its planted_truth.json); sizes come from DIR")
    demo.add_argument("--unchanged", action="store_true",
                      help="with --refresh-of: a fresh sample of the same population, nothing planted")
    demo.set_defaults(handler=_demo_data)

    run = sub.add_parser("run", help="run the analysis (cached) and write the results folder")
    _data_flags(run)
    _engine_flags(run)
    run.add_argument("--force", action="store_true", help="recompute even if cached results match")
    run.set_defaults(handler=_run)

    report = sub.add_parser("report", help="run the analysis, then render the Quarto site and PDF")
    _data_flags(report)
    _engine_flags(report)
    report.set_defaults(handler=_report)

    validate = sub.add_parser("validate", help="check input files and print a data-quality summary")
    _data_flags(validate)
    validate.set_defaults(handler=_validate)

    assign = sub.add_parser("assign", help="assign each row of a file to a segment with the fitted model")
    assign.add_argument("input", type=Path, help="a CSV in the population format")
    assign.add_argument("--out", type=Path, required=True,
                        help="CSV to write (with --engine dask: a folder of Parquet parts)")
    assign.add_argument("--results", type=Path, help="results folder with the fitted model (default _results)")
    _engine_flags(assign)
    assign.set_defaults(handler=_assign)
    return parser


def _data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--population", type=Path, help="population CSV (AZDIAS format)")
    parser.add_argument("--customers", type=Path, help="customers CSV (same columns)")
    parser.add_argument("--feature-summary", type=Path, help="feature summary CSV (default: packaged copy)")
    parser.add_argument("--k", type=int, help="force the number of segments")
    parser.add_argument("--groups", type=int, help="force the number of groups (default: chosen k, 4-9)")
    parser.add_argument("--types", type=int, help="force the number of types (default: 3 per group, 12-40)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, dest="results", help="results folder (default _results)")
    parser.add_argument("--keep-model", action="store_true", default=None,
                        help="after a data refresh: score the new data with the previous run's model "
                             "instead of fitting a new one (segments keep their ids exactly)")


def _engine_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=("local", "dask"),
                        help="local: one process (default); dask: a Dask cluster (pip install -e '.[dask]')")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="address of an existing Dask scheduler (default: start a local cluster)")


def _settings(args: argparse.Namespace) -> Settings:
    keys = ("population", "customers", "feature_summary", "k", "seed", "results", "groups", "types", "keep_model",
            "engine", "scheduler")
    return load_settings({key: getattr(args, key, None) for key in keys})


def _stages(args: argparse.Namespace) -> Stages:
    return Stages(stream=None) if args.quiet else Stages()


def _demo_data(args: argparse.Namespace) -> int:
    from analysis.demo.synthetic import generate
    stages = _stages(args)
    if args.refresh_of is not None:
        from analysis.demo.refresh import generate_refresh
        with (_on_failure(f"{args.out} was left as it was."),
              stages.stage(f"generate a later delivery of {args.refresh_of} into {args.out}")):
            generate_refresh(args.refresh_of, args.out, seed=args.seed, planted=not args.unchanged)
        return 0
    with (_on_failure(f"{args.out} was left as it was."),
          stages.stage(f"generate {args.population:,} + {args.customers:,} rows into {args.out}")):
        generate(args.out, population=args.population, customers=args.customers,
                 seed=0 if args.seed is None else args.seed)
    return 0


def _run(args: argparse.Namespace) -> int:
    from analysis.pipeline import run
    settings = _settings(args)
    with _on_failure(_kept_results(settings.results)):
        run(settings, _stages(args), force=args.force)
    return 0


def _report(args: argparse.Namespace) -> int:
    from analysis.pipeline import run
    from analysis.settings import project_root
    from analysis.shell.render import SITE, render_site
    settings = _settings(args)
    stages = _stages(args)
    with _on_failure(_kept_results(settings.results)):
        results = run(settings, stages)
    with _on_failure(_kept_file(project_root() / SITE)):
        return render_site(results, stages)


def _validate(args: argparse.Namespace) -> int:
    from analysis.shell.validate import validate
    print(validate(_settings(args), _stages(args)))
    return 0


def _assign(args: argparse.Namespace) -> int:
    from analysis.shell.assign import assign_file
    settings = load_settings({"engine": args.engine, "scheduler": args.scheduler})
    results = args.results or settings.results
    stages = _stages(args)
    with _on_failure(_kept_file(args.out)), stages.stage(f"assign {args.input}"):
        if settings.engine == "dask":
            from analysis.engine.dask import assign_parts
            count = assign_parts(results, args.input, args.out, settings, stages)
        else:
            count = assign_file(results, args.input, args.out)
    stages.say(f"wrote {count:,} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
