"""The one way tests run the `actstore` command line in process (click's CliRunner).

`cli(*args)` stringifies the arguments (paths, numbers), runs `actstore ARGS` and asserts the exit
status is `code` (default 0; `code=None` checks nothing, for tests that read a failure
themselves). Exceptions other than exits propagate, so a traceback fails the test where it
happens, unless `catch_exceptions=True` (then `result.exception` holds it).
"""

from __future__ import annotations

from click.testing import CliRunner, Result

from actstore.cli import main


def cli(*args, code: int | None = 0, input: str | None = None, catch_exceptions: bool = False) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=catch_exceptions)
    if code is not None:
        assert result.exit_code == code, result.output
    return result
