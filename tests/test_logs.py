"""Secrets never reach the logs, whoever logs them."""

from __future__ import annotations

import json
import logging

from engine.logs import REDACTED, configure_logging, get_logger, redact


def test_secret_keys_are_redacted_at_any_depth():
    event = {
        "headers": {"Authorization": "Bearer abc", "X-API-Key": "k", "accept": "json"},
        "items": [{"password": "p"}, {"client_secret": "s"}],
        "model": "gpt",
    }
    cleaned = redact(event)
    assert cleaned["headers"] == {"Authorization": REDACTED, "X-API-Key": REDACTED,
                                  "accept": "json"}
    assert cleaned["items"] == [{"password": REDACTED}, {"client_secret": REDACTED}]
    assert cleaned["model"] == "gpt"


def test_key_shaped_values_are_redacted_inside_text():
    text = "auth failed for pk_live_abcdefghijklmnop and Bearer sk-123456"
    cleaned = redact(text)
    assert "abcdefghijklmnop" not in cleaned and "sk-123456" not in cleaned
    assert cleaned.startswith("auth failed for pk_live_abcdef")


def test_rendered_json_lines_are_redacted(capsys):
    configure_logging("INFO", "json")
    try:
        get_logger("t").info("calling upstream", api_key="sk-live-123", note="pk_test_zzzzzzzzzzzz")
        logging.getLogger("third.party").warning("token=%s", "Bearer abc.def")
        lines = [json.loads(x) for x in capsys.readouterr().err.strip().splitlines()]
    finally:
        configure_logging("WARNING", "json")
    assert lines[0]["api_key"] == REDACTED
    assert "zzzzzzzzzzzz" not in lines[0]["note"]
    assert "abc.def" not in lines[1]["event"]
