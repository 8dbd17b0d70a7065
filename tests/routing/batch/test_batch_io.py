"""Batch inputs a researcher uploads: good files read right, bad files refused with a clear reason."""

import codecs
import csv
import json

import pytest

from routing.batch.io import (PREVIEW_CELL_CHARS, PREVIEW_INPUT_ROWS, ResultsStore, check_rows,
                              detect_prompt_column, neutralise_cell, open_batch_file, preview_input, prompt_hash,
                              read_columns, results_paths)
from routing.errors import UserError


def write_csv(path, header, rows, encoding="utf-8"):
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --------------------------------------------------------------------------- column detection

@pytest.mark.parametrize("columns, expected", [
    (["id", "prompt", "notes"], "prompt"),
    (["ID", "Text"], "Text"),
    (["QUESTION", "answer"], "QUESTION"),
    ([" Prompt ", "text"], " Prompt "),          # prompt preferred over text
    (["text", "prompt"], "prompt"),
])
def test_prompt_column_is_found_by_name_case_insensitively(columns, expected):
    assert detect_prompt_column(columns) == expected


def test_user_choice_wins_and_an_unknown_choice_names_the_columns():
    assert detect_prompt_column(["prompt", "body"], "body") == "body"
    assert detect_prompt_column(["prompt", "Body"], "body") == "Body"
    with pytest.raises(UserError, match="no column 'nope'.*'prompt', 'Body'"):
        detect_prompt_column(["prompt", "Body"], "nope")


def test_missing_prompt_column_names_the_columns_found(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["id", "body", "lang"], [["1", "hello", "en"]])
    with pytest.raises(UserError, match=r"No prompt column.*'id', 'body', 'lang'"):
        open_batch_file(path)
    columns, detected = read_columns(path)
    assert columns == ["id", "body", "lang"] and detected is None
    source = open_batch_file(path, prompt_column="body")
    assert [r.prompt for r in source.iter_rows()] == ["hello"]


# --------------------------------------------------------------------------- reading

def test_csv_rows_keep_every_column_and_quoted_newlines(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["id", "Question", "tag"],
                     [["a", "line one\nline two, with comma", "t1"], ["b", "second", ""]])
    source = open_batch_file(path)
    assert source.format == "csv" and source.rows == 2 and source.prompt_column == "Question"
    rows = list(source.iter_rows())
    assert rows[0].prompt == "line one\nline two, with comma"
    assert rows[0].fields == {"id": "a", "Question": "line one\nline two, with comma", "tag": "t1"}
    assert [r.index for r in rows] == [0, 1]


def test_semicolon_csv_is_sniffed(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id;prompt\n1;hello, world\n", encoding="utf-8")
    assert [r.prompt for r in open_batch_file(path).iter_rows()] == ["hello, world"]


def test_jsonl_rows_and_bare_strings(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"question": "what?", "meta": {"a": 1}}\n\n{"question": "why?"}\n', encoding="utf-8")
    source = open_batch_file(path)
    rows = list(source.iter_rows())
    assert source.format == "jsonl" and source.rows == 2 and source.columns == ["question", "meta"]
    assert [r.prompt for r in rows] == ["what?", "why?"]
    assert rows[0].fields["meta"] == {"a": 1}
    path.write_text('{"prompt": "a"}\n"b"\n', encoding="utf-8")
    assert [r.prompt for r in open_batch_file(path).iter_rows()] == ["a", "b"]


def test_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": \n', encoding="utf-8")
    with pytest.raises(UserError, match="line 2 is not valid JSON"):
        open_batch_file(path)
    path.write_text('{"prompt": "a"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(UserError, match="line 2 is a JSON list"):
        open_batch_file(path)


def test_chunks_cover_every_row_once(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["prompt"], [[f"p{i}"] for i in range(10)])
    chunks = list(open_batch_file(path).iter_chunks(4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert [r.index for c in chunks for r in c] == list(range(10))


# --------------------------------------------------------------------------- encodings

def test_utf8_byte_order_mark_is_accepted(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["prompt", "note"], [["héllo wörld", "ü"]], encoding="utf-8-sig")
    assert path.read_bytes().startswith(codecs.BOM_UTF8)
    source = open_batch_file(path)
    assert source.columns == ["prompt", "note"]
    assert next(source.iter_rows()).prompt == "héllo wörld"


def test_latin1_file_is_refused_with_the_byte_and_position(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes("prompt\nhello\ncaf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"not UTF-8: byte 0xe9 at position 16 \(line 3\).*Save the file as UTF-8"):
        open_batch_file(path)


def test_invalid_byte_far_into_a_big_file_is_located(tmp_path):
    path = tmp_path / "x.csv"
    body = b"prompt\n" + b"hello\n" * 300_000
    path.write_bytes(body + b"\xffbad\n")
    with pytest.raises(UserError, match=f"byte 0xff at position {len(body)} \\(line 300002\\)"):
        open_batch_file(path)


def test_utf16_file_is_named_as_such(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes("prompt\nhi\n".encode("utf-16"))
    with pytest.raises(UserError, match="UTF-16"):
        open_batch_file(path)


# --------------------------------------------------------------------------- empty and too large

@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"   \n\n", "empty"),
    (codecs.BOM_UTF8, "empty"),
    (b"prompt,id\n", r"header \(prompt, id\) but no rows"),
    (b"prompt\n\n\n", "no rows"),
])
def test_empty_files_are_refused(tmp_path, content, message):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        open_batch_file(path)


def test_too_many_rows_is_refused_with_the_limit(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["prompt"], [[f"p{i}"] for i in range(11)])
    with pytest.raises(UserError, match=r"11 rows; the limit is 10 \(ROUTER_BATCH_MAX_ROWS\)"):
        open_batch_file(path, max_rows=10)
    assert open_batch_file(path, max_rows=11).rows == 11
    assert open_batch_file(path, max_rows=0).rows == 11  # 0: no limit


def test_too_large_file_is_refused_with_the_limit(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["prompt"], [["x" * 1000] for _ in range(1200)])
    with pytest.raises(UserError, match=r"1\.1 MB; the limit is 1 MB \(ROUTER_BATCH_MAX_MB\)"):
        open_batch_file(path, max_mb=1)
    with pytest.raises(UserError, match="limit is 1 MB"):
        read_columns(path, max_mb=1)


# --------------------------------------------------------------------------- results

@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=x", "'\t=x"), ("\rx", "'\rx"), ("hello = world", "hello = world"), (0.5, 0.5), (-1, -1), ("", ""),
])
def test_formula_cells_are_neutralised(value, expected):
    assert neutralise_cell(value) == expected


def test_results_store_appends_resumes_and_repairs_a_half_written_line(tmp_path):
    store = ResultsStore(tmp_path / "r.jsonl")
    store.append([{"row": 1, "prompt_hash": "b"}, {"row": 0, "prompt_hash": "a"}])
    with store.path.open("a", encoding="utf-8") as fh:
        fh.write('{"row": 2, "prompt_ha')  # killed mid-write
    assert store.done() == {0: "a", 1: "b"}
    assert store.path.read_text(encoding="utf-8").endswith("}\n")
    store.append([{"row": 2, "prompt_hash": "c"}, {"row": 1, "prompt_hash": "b", "dup": True}])
    assert [r["row"] for r in store.iter_records()] == [0, 1, 2]  # row order, each once
    assert "dup" not in list(store.iter_records())[1]


def test_results_for_another_input_are_not_mixed_in(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["prompt"], [["a"], ["b"]])
    source = open_batch_file(path)
    store = ResultsStore(tmp_path / "r.jsonl")
    store.append([{"row": 0, "prompt_hash": prompt_hash("a")}, {"row": 1, "prompt_hash": prompt_hash("other")}])
    with pytest.raises(UserError, match="different input"):
        store.check_matches(source)


def test_results_paths_pair_csv_and_jsonl(tmp_path):
    assert results_paths(tmp_path / "out.csv") == (tmp_path / "out.jsonl", tmp_path / "out.csv")
    assert results_paths(tmp_path / "out.jsonl") == (tmp_path / "out.jsonl", tmp_path / "out.csv")
    assert results_paths(tmp_path / "out") == (tmp_path / "out.jsonl", tmp_path / "out.csv")
    assert json.dumps(str(tmp_path))  # paths are plain


# --------------------------------------------------------------------------- delimiters inside prompts, previews

def test_unquoted_comma_in_a_one_column_file_is_refused_not_cut(tmp_path):
    """`prompt` / `hello, world`: the comma splits the row; reading on would run the prompt "hello"."""
    path = tmp_path / "x.csv"
    path.write_text("prompt\nfine\nhello, world\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"x\.csv line 3 has 2 values separated by commas, but the header has "
                                        r"1 column \(prompt\).*double quotes"):
        open_batch_file(path)
    path.write_text('prompt\nfine\n"hello, world"\n', encoding="utf-8")   # quoted, as spreadsheets save it
    assert [r.prompt for r in open_batch_file(path).iter_rows()] == ["fine", "hello, world"]


def test_extra_values_in_a_wider_file_are_refused_but_trailing_empty_ones_are_fine(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,prompt,note\n1,hello, world,x\n", encoding="utf-8")
    with pytest.raises(UserError, match="line 2 has 4 values.*3 columns"):
        open_batch_file(path)
    path.write_text("id,prompt\n1,hello,,\n2,bye\n", encoding="utf-8")    # a trailing delimiter, a short row
    assert [(r.prompt, r.fields["id"]) for r in open_batch_file(path).iter_rows()] == [("hello", "1"), ("bye", "2")]
    assert check_rows(path) == 2


def test_semicolon_file_with_a_stray_semicolon_names_the_delimiter(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id;prompt\n1;a; b\n", encoding="utf-8")
    with pytest.raises(UserError, match="separated by semicolons"):
        check_rows(path)


def test_one_column_file_previews_as_its_one_column(tmp_path):
    """A sniffer that may pick any character split the header `prompt` on "p" ("Unnamed: 0 | rom | t")."""
    path = tmp_path / "x.csv"
    path.write_text("prompt\nWrite a poem\nhelp me plan a trip\n", encoding="utf-8")
    assert preview_input(path) == (["prompt"], [["Write a poem"], ["help me plan a trip"]])


def test_preview_reads_like_the_run_and_cuts_long_cells(tmp_path):
    path = write_csv(tmp_path / "x.csv", ["id", "Prompt", "id"], [["1", "x" * 1000, "a"], ["2", "short"]]
                     + [[str(i), "p", ""] for i in range(20)])
    columns, rows = preview_input(path)
    assert columns == open_batch_file(path).columns == ["id", "Prompt", "id_2"]
    assert len(rows) == PREVIEW_INPUT_ROWS and rows[1] == ["2", "short", ""]
    assert rows[0][1] == "x" * (PREVIEW_CELL_CHARS - 1) + "…"
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text('{"prompt": "a", "meta": {"k": 1}}\n{"prompt": "b", "extra": 2}\n', encoding="utf-8")
    assert preview_input(jsonl) == (["prompt", "meta", "extra"], [["a", '{"k": 1}', ""], ["b", "", "2"]])


def test_preview_of_a_file_with_a_bad_line_shows_what_comes_before_it(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": \n{"prompt": "c"}\n', encoding="utf-8")
    assert preview_input(path) == (["prompt"], [["a"]])
    with pytest.raises(UserError, match="line 2 is not valid JSON"):
        check_rows(path)
