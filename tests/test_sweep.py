"""`crmflow sweep`'s pieces: --since parsing, the progress line on a terminal, the summary and the exit code."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from crmflow.sweep import Progress, parse_since, report
from workers.sweep import SweepResult, Window

NOW = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


def test_since_takes_iso_8601_with_an_offset() -> None:
    assert parse_since("2026-11-30T06:00:00Z", NOW) == NOW - timedelta(hours=1)
    assert parse_since("2026-11-30T07:30:00+01:00", NOW) == NOW - timedelta(minutes=30)


@pytest.mark.parametrize(
    ("text", "says"),
    [("yesterday", "not an ISO 8601 time"), ("2026-11-30T06:00:00", "no offset"), ("2026-12-01T00:00:00Z", "future")],
)
def test_a_bad_since_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_since(text, NOW)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def result(**fields: object) -> SweepResult:
    swept = SweepResult("zoho", "Appointments__s", Window(NOW - timedelta(hours=1), NOW))
    for name, value in fields.items():
        setattr(swept, name, value)
    return swept


def test_progress_is_drawn_on_a_terminal_only() -> None:
    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress(stream)
        progress.page(result(pages=2, found=400, queued=398, already_queued=2))
        progress.done()

    assert "page 2: 400 found, 398 queued, 2 already queued" in terminal.getvalue()
    assert terminal.getvalue().endswith("\n")
    assert pipe.getvalue() == ""


def test_the_summary_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    done = result(found=3, queued=3, pages=1, calls=1, complete=True)
    stopped = result(found=200, queued=200, pages=1, calls=1, error="zoho: HTTP_500: down")

    assert report([done]) == 0
    assert report([done, stopped]) == 1
    out, err = capsys.readouterr()
    assert (
        "sweep zoho/Appointments__s: found 3, queued 3, already queued 0, pages 1, CRM calls 1, "
        "window 2026-11-30T06:00:00Z .. 2026-11-30T07:00:00Z: complete"
    ) in out
    assert "INCOMPLETE: zoho: HTTP_500: down" in out
    assert "did not queue everything" in err


def test_a_window_too_large_to_list_says_what_to_do_not_that_the_next_sweep_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    skipped = result(skipped=True, error="zoho: the window is too large to list: ... crmflow sweep --source zoho")

    assert report([skipped]) == 1
    out, err = capsys.readouterr()
    assert "window 2026-11-30T06:00:00Z .. 2026-11-30T07:00:00Z (skipped): INCOMPLETE: zoho: the window" in out
    assert "cannot go on: zoho: the window is too large" in err and "goes on from there" not in err
