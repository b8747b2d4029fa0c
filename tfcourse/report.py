"""``python -m tfcourse.report RUN``: write a run's report (``tfcourse.train`` does it at the end of
every run); ``--compare RUN RUN ...`` writes a comparison page; ``--check`` / ``--screenshot`` open
the page in headless Chromium (``report.browser``) and fail unless every image loads without
console errors."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from typing import List, Optional

from tfcourse import cli, machine, rundir
from tfcourse.pages import browser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfcourse.report", description="Write a run's report (report.html + report.md), or compare runs."
    )
    parser.add_argument("runs", nargs="+", help="a run folder or export (or, with --compare, two or more)")
    parser.add_argument("--compare", action="store_true", help="one page putting the runs side by side")
    parser.add_argument(
        "--output-dir", default=None, help="default: the run folder (with --compare: runs/compare-<time>)"
    )
    parser.add_argument("--no-explanations", action="store_true", help="leave out the Grad-CAM gallery")
    parser.add_argument(
        "--check",
        action="store_true",
        help="open the page in headless Chromium; fail unless every image loads without console errors",
    )
    parser.add_argument(
        "--screenshot",
        action="store_true",
        help="with the check, keep a full-page screenshot (report.png) beside the page",
    )
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    machine.load_tensorflow()
    from tfcourse.pages.compare_page import write_comparison  # TensorFlow loads here, after the flags are read
    from tfcourse.pages.run_page import write_report
    from tfcourse.pages.table_run_page import write_table_report
    from tfcourse.rundir import is_table_run

    created = None
    try:
        with cli.sigterm_unwinds():
            if args.output_dir:
                rundir.check_writable_folder(args.output_dir, "--output-dir")
            if args.check or args.screenshot:
                browser.require_available()
            if args.compare:
                out_dir = args.output_dir or os.path.join("runs", f"compare-{time.strftime('%Y%m%d-%H%M%S')}")
                if not os.path.isdir(out_dir):
                    created = out_dir
                paths = write_comparison(args.runs, out_dir)
            else:
                if len(args.runs) != 1:
                    raise ValueError("Give one run folder (or add --compare for several).")
                if args.output_dir and not os.path.isdir(args.output_dir):
                    created = args.output_dir
                if is_table_run(args.runs[0]):
                    paths = write_table_report(args.runs[0], args.output_dir)
                else:
                    paths = write_report(
                        args.runs[0], args.output_dir, explanations=not args.no_explanations, progress=True
                    )
            if args.check or args.screenshot:
                shot = os.path.splitext(paths["html"])[0] + ".png" if args.screenshot else None
                browser.require_clean_page(paths["html"], "tfcourse", screenshot=shot)
    except KeyboardInterrupt as error:  # Ctrl-C or SIGTERM (cli.sigterm_unwinds)
        if created and os.path.isdir(created):
            shutil.rmtree(created, ignore_errors=True)
        cli.interrupted_exit(parser, error)
    except (ValueError, OSError) as error:  # OSError: an output folder that cannot be written
        if created and os.path.isdir(created):
            shutil.rmtree(created, ignore_errors=True)
        message = (
            error
            if isinstance(error, ValueError)
            else cli.write_fault(error)
            or f"cannot write {error.filename or 'the report'}: {error.strerror}; pass another --output-dir"
        )
        print(f"tfcourse.report: error: {message}", file=sys.stderr)
        return 2
    print(paths["html"])
    print(paths["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
