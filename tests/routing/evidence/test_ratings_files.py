"""The ratings and price tables are read strictly: every mistake is a UserError that says where."""

from pathlib import Path

import pytest

from routing.errors import UserError
from routing.evidence.ratings import default_ratings, read_price_table, read_ratings

HEADER = "variant,category,model,rating,ci95_low,ci95_high\n"


def write(tmp_path: Path, text: str, name: str = "ratings.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_one_variant_by_model_and_category(tmp_path):
    path = write(tmp_path, HEADER + "plain,full,a,1300,1290,1310\n"
                 "style_control,full,a,1250.5,1240.0,1261\n"
                 "style_control,coding,a,1200,1190,1210\n"
                 "style_control,full,b,1100,1090,1110\n")
    assert read_ratings(path) == {"a": {"full": (1250.5, 1240.0, 1261.0), "coding": (1200.0, 1190.0, 1210.0)},
                                  "b": {"full": (1100.0, 1090.0, 1110.0)}}
    assert read_ratings(path, "plain") == {"a": {"full": (1300.0, 1290.0, 1310.0)}}


@pytest.mark.parametrize("text, variant, message", [
    (None, "style_control", "not found"),
    ("variant,category,model,rating\nplain,full,a,1\n", "plain", "lacks the column(s) ci95_low, ci95_high"),
    (HEADER + "plain,full,a,1300,1290,1310\n", "style_control", "no variant 'style_control'; it has: plain"),
    (HEADER + "plain,full,a,1300,1290,1310\nplain,full,b,high,1290,1310\n", "plain", "line 3: rating 'high'"),
    (HEADER + "plain,full,a,1300,1290,\n", "plain", "line 2: ci95_high ''"),
    (HEADER + "plain,full,a,nan,1290,1310\n", "plain", "line 2: rating 'nan' is not a finite number"),
    (HEADER + "plain,full,a,1300,1305,1310\n", "plain", "line 2: ci95_low <= rating <= ci95_high"),
    (HEADER + "plain,full,a,1300,1290,1310\nplain,full,a,1301,1290,1310\n", "plain", "line 3: a second row"),
    (HEADER + "plain,full,,1300,1290,1310\n", "plain", "line 2: the model and the category"),
])
def test_bad_ratings_files_say_what_is_wrong(tmp_path, text, variant, message):
    path = tmp_path / "missing.csv" if text is None else write(tmp_path, text)
    with pytest.raises(UserError) as err:
        read_ratings(path, variant)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_not_utf8_is_a_user_error(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(HEADER.encode() + b"plain,full,\xff\xfe,1,0,2\n")
    with pytest.raises(UserError, match="not UTF-8"):
        read_ratings(path, "plain")


PRICE_HEADER = "name,model,input_usd_per_mtok,output_usd_per_mtok,organization,price_source\n"


def test_reads_prices_and_leaves_out_models_without_one(tmp_path):
    path = write(tmp_path, PRICE_HEADER + "DeepSeek-R1,deepseek-r1,0.55,2.19,DeepSeek,https://x/pricing\n"
                 "mai-1-preview,mai-1-preview,,,Mai AI,\n", "prices.csv")
    assert read_price_table(path) == {
        "deepseek-r1": {"input_usd_per_mtok": 0.55, "output_usd_per_mtok": 2.19, "source": "https://x/pricing"}}


@pytest.mark.parametrize("text, message", [
    (None, "not found"),
    ("model,input_usd_per_mtok\na,1\n", "lacks the column(s) output_usd_per_mtok, price_source"),
    (PRICE_HEADER + "A,a,cheap,1,Org,src\n", "line 2: input_usd_per_mtok 'cheap' is not a number"),
    (PRICE_HEADER + "A,a,-1,1,Org,src\n", "line 2: a price must not be negative"),
    (PRICE_HEADER + "A,a,1,1,Org,src\nA2,a,2,2,Org,src\n", "line 3: a second price row for model 'a'"),
])
def test_bad_price_files_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "missing.csv" if text is None else write(tmp_path, text, "prices.csv")
    with pytest.raises(UserError) as err:
        read_price_table(path)
    assert message in str(err.value)


def test_the_default_is_the_median_with_the_middle_half_as_its_interval():
    ratings = {m: {"full": (r, r - 5, r + 5)} for m, r in zip("abcde", (1000.0, 1100.0, 1200.0, 1300.0, 1400.0))}
    ratings["f"] = {"coding": (1234.0, 1230.0, 1240.0)}
    assert default_ratings(ratings) == {"coding": (1234.0, 1234.0, 1234.0), "full": (1200.0, 1100.0, 1300.0)}
