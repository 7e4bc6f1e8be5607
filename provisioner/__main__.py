"""``python -m provisioner`` and the ``provisioner`` command: the command line.

Kept apart from cli.py so that a Ctrl-C while the program starts (its imports)
ends without a traceback too, and so that Ctrl-C anywhere exits 130 (click's
own handling would say "Aborted!" and exit 1).
"""

from __future__ import annotations

import sys

INTERRUPTED = 130


def run() -> None:
    try:
        import click

        from provisioner.cli import main

        try:
            code = main.main(prog_name="provisioner", standalone_mode=False)
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        except click.Abort as exc:
            if not isinstance(exc.__cause__, KeyboardInterrupt):
                sys.stderr.write("Aborted!\n")
                code = 1
            else:
                raise KeyboardInterrupt from None
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted: nothing was written\n")
        code = INTERRUPTED
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
