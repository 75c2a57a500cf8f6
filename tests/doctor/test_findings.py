"""Findings: the text and JSON a user sees, and which statuses fail."""

from __future__ import annotations

import json

from crmflow.doctor.findings import empty_request, fail, failed, line, ok, render_json, render_text, skip, warn


def test_only_a_failure_fails() -> None:
    assert not failed([ok("a", "fine"), warn("b", "look", "X"), skip("c", "not run")])
    assert failed([ok("a", "fine"), fail("b", "broken", "X", "set X")])


def test_text_names_the_setting_and_the_fix_and_counts() -> None:
    text = render_text([ok("redis", "accepts writes", "REDIS_URL"), fail("rules", "bad", "RULES_PATH", "fix it")])

    assert text.splitlines() == [
        "ok    redis: REDIS_URL: accepts writes",
        "FAIL  rules: RULES_PATH: bad",
        "      fix: fix it",
        "doctor: 1 failed, 0 warnings, 1 ok, 0 skipped",
    ]


def test_line_and_json() -> None:
    finding = warn("public URL", "is not https", "PUBLIC_BASE_URL", "use TLS")

    assert line(finding) == "PUBLIC_BASE_URL: is not https (fix: use TLS)"
    assert json.loads(render_json([finding])) == {
        "ok": True,
        "findings": [
            {
                "check": "public URL",
                "status": "warn",
                "message": "is not https",
                "setting": "PUBLIC_BASE_URL",
                "fix": "use TLS",
            }
        ],
    }


def test_an_empty_write_is_worded_by_its_status() -> None:
    assert empty_request(400) == "the empty request was refused, HTTP 400, as meant"
    assert empty_request(200) == "the empty request was accepted, HTTP 200, with nothing in it to create"
    assert empty_request(302) == "the empty request answered HTTP 302"
