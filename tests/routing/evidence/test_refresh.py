"""The refresh writes each pool model's evidence, prints what it matched, and only writes with --write."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from routing.errors import UserError
from routing.evidence.__main__ import main
from routing.evidence.ratings import read_price_table, read_ratings
from routing.evidence.refresh import dump_pool_json, refresh_pool
from routing.pool import load_pool
from routing.settings import DEFAULT_MODELS_FILE, REPO_ROOT, SHARED_DATA_DIR

RATINGS = """variant,category,model,rating,ci95_low,ci95_high
style_control,coding,deepseek-r1,1443.2,1431.5,1454.9
style_control,full,deepseek-r1,1396.1,1391.3,1400.9
style_control,full,qwen2.5-72b-instruct,1303.0,1299.0,1307.0
style_control,full,gpt-4-0314,1250.0,1240.0,1260.0
style_control,full,gpt-4-0613,1240.0,1230.0,1250.0
plain,full,deepseek-r1,1410.0,1400.0,1420.0
"""
PRICES = """name,model,input_usd_per_mtok,output_usd_per_mtok,organization,price_source
DeepSeek-R1,deepseek-r1,0.55,2.19,DeepSeek,https://api-docs.deepseek.com/quick_start/pricing
"""
POOL = {
    "_comment": "keep me",
    "models": [
        {"id": "deepseek-r1", "provider": "openrouter", "model_name": "deepseek/deepseek-r1",
         "input_price_per_m": 0.45, "output_price_per_m": 2.15, "categories": ["coding"], "zzz_custom": 1},
        {"id": "qwen2.5", "provider": "openrouter", "model_name": "qwen/qwen-2.5-72b-instruct",
         "evidence": {"benchmarks": {"mmlu": 0.86}, "unknown": True, "note": "old"}, "display_name": "Qwen"},
        {"id": "gemma", "provider": "local", "model_name": "google/gemma-3-270m"},
        {"id": "gpt4", "provider": "openrouter", "model_name": "openai/gpt-4"},
    ],
    "zzz_trailer": {"kept": True},
}
KW = dict(variant="style_control", source="LMArena text arena", snapshot="2025-12-17",
          ratings_file_name="ratings.csv")


@pytest.fixture
def files(tmp_path):
    (tmp_path / "ratings.csv").write_text(RATINGS, encoding="utf-8")
    (tmp_path / "prices.csv").write_text(PRICES, encoding="utf-8")
    pool = tmp_path / "models.json"
    pool.write_text(json.dumps(POOL, indent=2) + "\n", encoding="utf-8")
    return tmp_path


def test_matched_models_get_their_ratings_and_list_price(files):
    data, report = refresh_pool(POOL, read_ratings(files / "ratings.csv"), read_price_table(files / "prices.csv"),
                                **KW)
    deepseek = data["models"][0]["evidence"]
    assert deepseek == {
        "ratings": {"source": "LMArena text arena, style_control (ratings.csv)", "name": "deepseek-r1",
                    "variant": "style_control", "snapshot": "2025-12-17", "matched_by": "exact",
                    "categories": {"full": [1396.1, 1391.3, 1400.9], "coding": [1443.2, 1431.5, 1454.9]}},
        "list_price": {"input_usd_per_mtok": 0.55, "output_usd_per_mtok": 2.19,
                       "source": "https://api-docs.deepseek.com/quick_start/pricing"}}
    assert data["models"][0]["input_price_per_m"] == 0.45                # what OpenRouter charges stays
    qwen = data["models"][1]["evidence"]
    assert qwen["ratings"]["matched_by"] == "normalised" and "list_price" not in qwen
    assert "unknown" not in qwen and "note" not in qwen                   # the refresh's own keys are rewritten
    assert qwen["benchmarks"] == {"mmlu": 0.86}                            # other keys are kept
    assert POOL["models"][1]["evidence"]["unknown"] is True               # the input is not changed
    assert [r["status"] for r in report["models"]] == ["matched", "matched", "unmatched", "ambiguous"]
    assert report["models"][0]["change"] == "added" and report["models"][1]["change"] == "changed"


def test_unmatched_and_ambiguous_models_are_flagged_unknown(files):
    data, report = refresh_pool(POOL, read_ratings(files / "ratings.csv"), **KW)
    assert data["models"][2]["evidence"] == {
        "ratings": None, "unknown": True,
        "note": "no public rating matched google/gemma-3-270m; the prior takes the median of the pool's rated models per category"}
    gpt4 = data["models"][3]["evidence"]
    assert gpt4["ratings"] is None and gpt4["unknown"] is True and "gpt-4-0314, gpt-4-0613" in gpt4["note"]
    assert report["models"][3]["candidates"] == ["gpt-4-0314", "gpt-4-0613"]
    path = files / "out.json"                                              # the result is a valid pool
    path.write_text(dump_pool_json(data), encoding="utf-8")
    assert [m.id for m in load_pool(path) if m.evidence.get("unknown")] == ["gemma", "gpt4"]


def test_the_mapping_names_a_pool_id_or_model_name(files):
    ratings = read_ratings(files / "ratings.csv")
    data, report = refresh_pool(POOL, ratings, mapping={"gpt4": "gpt-4-0613", "deepseek/deepseek-r1": None}, **KW)
    assert data["models"][3]["evidence"]["ratings"]["name"] == "gpt-4-0613"
    assert data["models"][3]["evidence"]["ratings"]["matched_by"] == "map"
    assert data["models"][0]["evidence"]["unknown"] is True                # None: no public rating, on purpose
    with pytest.raises(UserError, match="gpt-5"):
        refresh_pool(POOL, ratings, mapping={"gpt4": "gpt-5"}, **KW)


def test_a_model_is_matched_by_its_id_when_its_model_name_is_not(files):
    pool = {"models": [{"id": "deepseek-r1", "provider": "openrouter", "model_name": "acme/r1-fast"}]}
    data, report = refresh_pool(pool, read_ratings(files / "ratings.csv"), **KW)
    assert data["models"][0]["evidence"]["ratings"]["name"] == "deepseek-r1"
    assert report["models"][0]["matched_on"] == "id"


def test_dry_run_prints_and_writes_nothing(files, capsys):
    pool = files / "models.json"
    before = pool.read_bytes()
    code = main(["refresh", "--pool", str(pool), "--ratings", str(files / "ratings.csv"),
                 "--prices", str(files / "prices.csv"), "--snapshot", "2025-12-17"])
    out = capsys.readouterr().out
    assert code == 0 and pool.read_bytes() == before
    assert "Dry run: nothing written" in out and "deepseek-r1  evidence added" in out
    not_matched = out.split("Not matched (2)")[1]
    assert "google/gemma-3-270m: no public rating matched" in not_matched
    assert "openai/gpt-4: ambiguous, candidates: gpt-4-0314, gpt-4-0613" in not_matched
    assert "deepseek/deepseek-r1 -> deepseek-r1 (exact; list price 0.55/2.19" in out.split("Not matched")[0]


def test_write_keeps_other_content_and_key_order_and_a_second_run_changes_nothing(files, capsys):
    pool = files / "models.json"
    args = ["refresh", "--pool", str(pool), "--ratings", str(files / "ratings.csv"), "--snapshot", "2025-12-17"]
    assert main([*args, "--write"]) == 0
    text = pool.read_text(encoding="utf-8")
    data = json.loads(text)
    assert list(data) == ["_comment", "models", "zzz_trailer"] and data["zzz_trailer"] == {"kept": True}
    assert list(data["models"][0]) == [*POOL["models"][0], "evidence"]
    assert list(data["models"][1]) == list(POOL["models"][1])             # evidence replaced where it was
    assert '"full": [1396.1, 1391.3, 1400.9]' in text and '\n  "models": [\n    {\n      "id"' in text
    assert {k: v for k, v in data["models"][0].items() if k != "evidence"} == POOL["models"][0]
    capsys.readouterr()
    assert main([*args, "--write"]) == 0
    assert "already holds this evidence: nothing to write" in capsys.readouterr().out
    assert pool.read_text(encoding="utf-8") == text


def test_without_snapshot_the_file_date_is_used_and_said(files, capsys):
    assert main(["refresh", "--pool", str(files / "models.json"), "--ratings", str(files / "ratings.csv")]) == 0
    assert "the ratings file's modification date" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--variant", "elo"], "no variant 'elo'; it has: plain, style_control"),
    (["--snapshot", "17/12/2025"], "is not a date"),
    (["--map", "MISSING"], "Map file"),
])
def test_command_errors_exit_2_with_the_reason(files, capsys, extra, message):
    extra = [str(files / "nope.json") if e == "MISSING" else e for e in extra]
    code = main(["refresh", "--pool", str(files / "models.json"), "--ratings", str(files / "ratings.csv"), *extra])
    assert code == 2 and message in capsys.readouterr().err


def test_show_prints_ratings_or_unknown(files, capsys):
    pool = files / "models.json"
    main(["refresh", "--pool", str(pool), "--ratings", str(files / "ratings.csv"), "--snapshot", "2025-12-17",
          "--write"])
    capsys.readouterr()
    assert main(["show", "--pool", str(pool)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "rating", "name", "full", "coding", "math", "creative_writing"]
    assert lines[1].split()[:6] == ["deepseek-r1", "deepseek-r1", "1396", "±5", "1443", "±12"]
    assert lines[3].split() == ["gemma", "unknown", "unknown", "unknown", "unknown", "unknown"]


def test_the_module_runs_as_a_command():
    done = subprocess.run([sys.executable, "-m", "routing.evidence", "show", "--pool", str(DEFAULT_MODELS_FILE)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "deepseek-r1" in done.stdout


RATINGS_DIR = SHARED_DATA_DIR / "ratings"


def test_the_shipped_pool_evidence_is_what_a_refresh_from_the_shared_files_writes():
    """assets/models.json cannot drift from the public file it says it comes from."""
    ratings_file = RATINGS_DIR / "lmarena_text_category_ratings.csv"
    prices_file = RATINGS_DIR / "lmarena_model_prices.csv"
    if not ratings_file.is_file() or not prices_file.is_file():
        pytest.skip(f"shared ratings folder {RATINGS_DIR} not found (see the shared data's SOURCES.md)")
    shipped = json.loads(Path(DEFAULT_MODELS_FILE).read_text(encoding="utf-8"))
    stated = [m["evidence"]["ratings"] for m in shipped["models"] if (m.get("evidence") or {}).get("ratings")]
    assert len(stated) == 5                                               # every model of the shipped pool matched
    variant, snapshot = stated[0]["variant"], stated[0]["snapshot"]
    assert snapshot == "2025-12-17" and variant == "style_control"
    refreshed, report = refresh_pool(shipped, read_ratings(ratings_file, variant), read_price_table(prices_file),
                                     variant=variant, source="LMArena text arena", snapshot=snapshot,
                                     ratings_file_name=ratings_file.name)
    assert refreshed == shipped
    assert {r["id"]: r["name"] for r in report["models"]} == {
        "deepseek-r1": "deepseek-r1", "mistral-small": "mistral-small-3.1-24b-instruct-2503",
        "qwen2.5": "qwen2.5-72b-instruct", "gemini-flash": "gemini-2.0-flash-001",
        "llama-3.3": "llama-3.3-70b-instruct"}
    assert dump_pool_json(shipped) == Path(DEFAULT_MODELS_FILE).read_text(encoding="utf-8")  # as the command writes it
