"""The /traffic endpoint through gradio_client, on the whole app with real traffic."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from tests.app_harness import launch_app  # noqa: E402


def test_the_traffic_api_reports_and_refuses_bad_dates(make_service, protocol_server):
    service = make_service(daily_budget_usd=1.0)
    protocol_server.set_model(service.pool.get("llama-3.3").model_name, status=500)
    answer = service.query("Write a limerick about a sleepy cat")
    service.learning.flush()
    with launch_app(service) as url:
        client = Client(url, verbose=False)
        report = client.predict(api_name="/traffic")
        assert report["totals"]["requests"] == 1 and report["totals"]["fallbacks_by_cause"] == {"server_error": 1}
        assert report["per_model"][0]["model"] == answer["answered_by"]
        assert report["totals"]["daily_cap_usd"] == 1.0 and report["range"]["days"] == 7
        assert "Write a limerick" not in str(report)   # aggregates only: no prompt, no answer
        past = client.predict(start="2020-01-01", end="2020-01-07", api_name="/traffic")
        assert past["empty"] is True and past["totals"]["requests"] == 0
        with pytest.raises(AppError, match="is before `start`"):
            client.predict(start="2020-01-07", end="2020-01-01", api_name="/traffic")
        with pytest.raises(AppError, match="is not a date"):
            client.predict(start="last week", api_name="/traffic")
        with pytest.raises(AppError, match="at most 366 days"):
            client.predict(start="2020-01-01", end="2022-01-01", api_name="/traffic")
