"""Reading batch inputs and writing batch results, with clear errors and resumable output.

Inputs are CSV (any extension but ``.jsonl``/``.ndjson``/``.json``) or JSON Lines. The
prompt column is found by name (:data:`PROMPT_COLUMN_NAMES`, case-insensitive) or chosen by
the user; every other column is kept. Files are checked before any row is processed (size,
UTF-8, emptiness, the prompt column, the row count) and then streamed in chunks, so memory
stays constant however long the file is.

Results go to an append-only JSON Lines file, the source of truth (one record per row,
written as soon as the row is done). An existing results file is resumed: rows already
done (same row index and prompt hash) are skipped. The CSV the user downloads is made from
it, with spreadsheet formulas neutralised (OWASP CSV injection, ``routing.safety.csv_safe``).

Paid calls are journalled before they are sent: ``x.started.jsonl`` beside ``x.jsonl`` gets a
line (synced to disk) for a row just before its request goes out. A row journalled as started
with no result is one whose request was in flight when the run died: the provider may have
answered and billed it, so a resumed run does not send it again; it records the row as
``status = "interrupted"`` with an error that says so (:data:`INTERRUPTED_ERROR`), in the
results and the CSV. Asking it again is a deliberate choice (``retry_interrupted``), never a
side effect of resuming.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from routing.safety.csv_safe import FORMULA_PREFIXES, neutralise_cell  # one helper for every CSV (re-exported here)
from routing.errors import UserError

#: Column names taken as the prompt, in order of preference (case-insensitive).
PROMPT_COLUMN_NAMES: tuple[str, ...] = ("prompt", "text", "question")
#: The status and error of a row whose paid call was in flight when the run stopped (not sent again).
INTERRUPTED = "interrupted"
INTERRUPTED_ERROR = ("Not answered: the run stopped (killed or crashed) while this row's request was in flight, so "
                     "the provider may have answered it and billed it, but the answer never arrived here. It was "
                     "not sent again, so it is not paid twice. To ask it again on purpose, rerun the batch command "
                     "with --retry-interrupted.")
#: Extensions read as JSON Lines; anything else is read as CSV.
JSONL_SUFFIXES: tuple[str, ...] = (".jsonl", ".ndjson", ".json")

_BLOCK = 1 << 20  # bytes read at a time when checking the encoding
_SNIFF_BYTES = 64 * 1024


def prompt_hash(prompt: str) -> str:
    """A short, stable fingerprint of a prompt (identifies a row together with its index)."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- checks

def _size_mb(path: Path) -> float:
    return path.stat().st_size / (1024 * 1024)


def check_size(path: Path, max_mb: float | None) -> None:
    """UserError when the file is larger than ``max_mb`` megabytes (None or 0: no limit)."""
    if max_mb and _size_mb(path) > max_mb:
        raise UserError(
            f"{path.name} is {_size_mb(path):.1f} MB; the limit is {max_mb:g} MB (ROUTER_BATCH_MAX_MB). "
            "Split the file, or use the batch command (`python -m routing.batch INPUT --out OUTPUT "
            "--max-mb 0`) for large files."
        )


def check_utf8(path: Path) -> None:
    """UserError naming the first byte that is not UTF-8 (a UTF-8 byte-order mark is fine)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    lines = 1
    with path.open("rb") as fh:
        head = fh.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise UserError(f"{path.name} is not UTF-8: it is saved as UTF-16 (byte-order mark "
                            f"0x{head[:2].hex()}). Save the file as UTF-8 (CSV UTF-8 in Excel).")
        fh.seek(0)
        while True:
            block = fh.read(_BLOCK)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                bad = exc.object[exc.start]
                position = offset - pending + exc.start
                line = lines + exc.object[: exc.start].count(b"\n")
                raise UserError(
                    f"{path.name} is not UTF-8: byte 0x{bad:02x} at position {position} (line {line}) "
                    "cannot be decoded. Save the file as UTF-8 (CSV UTF-8 in Excel) and upload it again."
                ) from None
            if not block:
                return
            lines += block.count(b"\n")
            offset += len(block)


def detect_prompt_column(columns: Sequence[str], chosen: str | None = None) -> str:
    """The prompt column: the user's choice if given, else the first of :data:`PROMPT_COLUMN_NAMES`."""
    found = ", ".join(repr(c) for c in columns) or "none"
    if chosen:
        if chosen in columns:
            return chosen
        lowered = {c.lower(): c for c in columns}
        if chosen.lower() in lowered:
            return lowered[chosen.lower()]
        raise UserError(f"There is no column {chosen!r}; the columns found are {found}.")
    lowered = {c.strip().lower(): c for c in reversed(list(columns))}
    for name in PROMPT_COLUMN_NAMES:
        if name in lowered:
            return lowered[name]
    raise UserError(
        f"No prompt column: name one of {', '.join(PROMPT_COLUMN_NAMES)} or choose the column. "
        f"The columns found are {found}."
    )


def is_jsonl(path: Path) -> bool:
    """JSON Lines by extension; for other names (e.g. uploads) by a first character '{' or '\"'."""
    if path.suffix.lower() in JSONL_SUFFIXES:
        return True
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        return False
    with path.open("rb") as fh:
        start = fh.read(_SNIFF_BYTES).lstrip(codecs.BOM_UTF8).lstrip()
    return start[:1] in (b"{", b'"')


# --------------------------------------------------------------------------- inputs

@dataclass(frozen=True)
class InputRow:
    """One input row: its 0-based index among data rows, the prompt, and every column's value."""

    index: int
    prompt: str
    fields: dict[str, Any]

    @property
    def hash(self) -> str:
        return prompt_hash(self.prompt)


@dataclass(frozen=True)
class BatchFile:
    """A checked batch input: format, columns, the prompt column and the number of rows."""

    path: Path
    format: str                      # "csv" or "jsonl"
    columns: list[str]
    prompt_column: str
    rows: int
    delimiter: str = ","

    def iter_rows(self) -> Iterator[InputRow]:
        """Every row in file order, streamed."""
        if self.format == "jsonl":
            for index, (_, record) in enumerate(_jsonl_records(self.path)):
                yield InputRow(index, _as_prompt(record.get(self.prompt_column)), record)
            return
        with self.path.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            next(reader, None)  # the header
            index = 0
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                _check_cell_count(self.path, cells, self.columns, self.delimiter, reader.line_num)
                values = dict(zip(self.columns, cells + [""] * (len(self.columns) - len(cells))))
                yield InputRow(index, _as_prompt(values.get(self.prompt_column)), values)
                index += 1

    def iter_chunks(self, chunk_size: int) -> Iterator[list[InputRow]]:
        """Rows in lists of at most ``chunk_size``."""
        chunk: list[InputRow] = []
        for row in self.iter_rows():
            chunk.append(row)
            if len(chunk) >= chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def _as_prompt(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line; a bare JSON string becomes {"prompt": s}."""
    with path.open("r", encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path.name} line {number} is not valid JSON ({exc.msg}); each line of a "
                                "JSONL file must be one JSON object like {\"prompt\": \"...\"}.") from None
            if isinstance(value, str):
                value = {PROMPT_COLUMN_NAMES[0]: value}
            if not isinstance(value, dict):
                raise UserError(f"{path.name} line {number} is a JSON {type(value).__name__}; each line must "
                                "be an object like {\"prompt\": \"...\"}.")
            yield number, value


def _sniff_delimiter(path: Path) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        sample = fh.read(_SNIFF_BYTES)
    first_line = sample.splitlines()[0] if sample else ""
    try:
        return csv.Sniffer().sniff(first_line, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _csv_columns(path: Path, delimiter: str) -> list[str]:
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh, delimiter=delimiter), None)
    columns = [c.strip() for c in header or []]
    if not any(columns):
        raise UserError(f"{path.name} is empty: it has no header row. Put the column names "
                        f"(one of them {PROMPT_COLUMN_NAMES[0]!r}) on the first line.")
    seen: dict[str, int] = {}
    unique = []
    for i, name in enumerate(columns):
        name = name or f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        seen.setdefault(name, 1)
        unique.append(name)
    return unique


def read_columns(path: str | Path, *, max_mb: float | None = None) -> tuple[list[str], str | None]:
    """The file's columns and the detected prompt column (None when none is recognised).

    For the UI's column chooser: checks size, encoding and emptiness, reads only the header
    (CSV) or the keys of every line (JSONL).
    """
    path = Path(path)
    fmt, columns, _ = _check_and_scan(path, max_mb, count_rows=False)
    try:
        detected: str | None = detect_prompt_column(columns)
    except UserError:
        detected = None
    return columns, detected


def _check_and_scan(path: Path, max_mb: float | None, *, count_rows: bool) -> tuple[str, list[str], int]:
    if not path.is_file():
        raise UserError(f"Input file {path} not found.")
    check_size(path, max_mb)
    if path.stat().st_size == 0:
        raise UserError(f"{path.name} is empty: upload a CSV with a prompt column, or JSONL.")
    check_utf8(path)
    with path.open("r", encoding="utf-8-sig") as fh:
        if not fh.read(_SNIFF_BYTES).strip():
            raise UserError(f"{path.name} is empty: it holds only blank space.")
    if is_jsonl(path):
        columns: dict[str, None] = {}
        rows = 0
        for _, record in _jsonl_records(path):
            rows += 1
            for key in record:
                columns.setdefault(str(key), None)
        return "jsonl", list(columns), rows
    delimiter = _sniff_delimiter(path)
    columns_list = _csv_columns(path, delimiter)
    rows = 0
    if count_rows:
        try:
            with path.open("r", encoding="utf-8-sig", newline="") as fh:
                reader = csv.reader(fh, delimiter=delimiter)
                next(reader, None)
                for cells in reader:
                    if not any(c.strip() for c in cells):
                        continue
                    _check_cell_count(path, cells, columns_list, delimiter, reader.line_num)
                    rows += 1
        except csv.Error as exc:
            raise UserError(f"{path.name} is not a readable CSV: {exc}.") from None
    return "csv", columns_list, rows


def _delimiter_name(delimiter: str) -> str:
    return {",": "commas", ";": "semicolons", "\t": "tabs", "|": "bars"}.get(delimiter, repr(delimiter))


def _check_cell_count(path: Path, cells: Sequence[str], columns: Sequence[str], delimiter: str, line: int) -> None:
    """UserError for a row with more values than the header has columns.

    An unquoted delimiter inside a prompt (``hello, world`` in a one-column file) splits it
    into two values; reading on would silently cut the prompt at the comma. Empty extra
    values (a trailing delimiter, as some spreadsheets write) are fine.
    """
    extra = cells[len(columns):]
    if not any(c.strip() for c in extra):
        return
    sep = "a comma" if delimiter == "," else f"the delimiter {delimiter!r}"
    raise UserError(
        f"{path.name} line {line} has {len(cells)} values separated by {_delimiter_name(delimiter)}, but the header "
        f"has {len(columns)} column{'s' if len(columns) != 1 else ''} ({', '.join(columns)}): a prompt with {sep} in "
        "it must be in double quotes (\"hello, world\"; spreadsheets do this when saving as CSV), or upload JSONL "
        "({\"prompt\": \"...\"} per line)."
    )


def open_batch_file(path: str | Path, *, prompt_column: str | None = None, max_rows: int | None = None,
                    max_mb: float | None = None) -> BatchFile:
    """Check an input file completely and describe it; every problem is a UserError.

    ``max_rows`` and ``max_mb`` are the limits (None or 0: no limit); callers pass
    ``settings.batch_max_rows`` and ``settings.batch_max_mb``.
    """
    path = Path(path)
    fmt, columns, rows = _check_and_scan(path, max_mb, count_rows=True)
    if not columns:
        raise UserError(f"{path.name} is empty: it has no rows.")
    column = detect_prompt_column(columns, prompt_column)
    if rows == 0:
        raise UserError(f"{path.name} has a header ({', '.join(columns)}) but no rows.")
    if max_rows and rows > max_rows:
        raise UserError(
            f"{path.name} has {rows:,} rows; the limit is {max_rows:,} (ROUTER_BATCH_MAX_ROWS). Split the file, "
            "or use the batch command (`python -m routing.batch INPUT --out OUTPUT --max-rows 0`)."
        )
    delimiter = _sniff_delimiter(path) if fmt == "csv" else ","
    return BatchFile(path=path, format=fmt, columns=columns, prompt_column=column, rows=rows, delimiter=delimiter)


#: Rows and characters per cell the upload preview shows.
PREVIEW_INPUT_ROWS = 10
PREVIEW_CELL_CHARS = 300


def preview_cell(value: Any, max_chars: int = PREVIEW_CELL_CHARS) -> str:
    """A cell as preview text: JSON for structures, cut to ``max_chars`` with an ellipsis."""
    text = _as_prompt(value)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def preview_input(path: str | Path, *, rows: int = PREVIEW_INPUT_ROWS) -> tuple[list[str], list[list[str]]]:
    """(columns, first rows) of an input, read exactly as a batch run reads it.

    The same delimiter detection and the same column names as :func:`open_batch_file`, so a
    one-column CSV headed ``prompt`` previews as one column (a general-purpose sniffer
    splits its header on a letter). Cells are text, long ones cut (:func:`preview_cell`).
    Call it after :func:`read_columns` has checked the file.
    """
    path = Path(path)
    out: list[list[str]] = []
    if is_jsonl(path):
        columns: dict[str, None] = {}
        records = []
        try:
            for _, record in _jsonl_records(path):
                records.append(record)
                for key in record:
                    columns.setdefault(str(key), None)
                if len(records) >= rows:
                    break
        except UserError:
            pass  # a bad line: the run (and check_rows) names it; the preview shows the lines before it
        names = list(columns)
        return names, [[preview_cell(r.get(c, "")) for c in names] for r in records]
    delimiter = _sniff_delimiter(path)
    names = _csv_columns(path, delimiter)
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        next(reader, None)
        try:
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                cells = (cells + [""] * len(names))[: len(names)]
                out.append([preview_cell(c) for c in cells])
                if len(out) >= rows:
                    break
        except csv.Error:
            pass  # the run reports it (open_batch_file); the preview shows what was readable
    return names, out


def check_rows(path: str | Path, *, max_mb: float | None = None) -> int:
    """The number of data rows, after the checks :func:`open_batch_file` makes of every row.

    UserError for what a run would refuse (encoding, bad JSONL lines, a row with more values
    than the header has columns); the prompt column and the row limit are not checked here.
    """
    _, _, rows = _check_and_scan(Path(path), max_mb, count_rows=True)
    return rows


def write_prompts_file(prompts: Iterable[Any], path: str | Path) -> Path:
    """Write a list of prompts as JSONL (``{"prompt": ...}`` per line) so it runs like an upload."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for prompt in prompts:
            fh.write(json.dumps({PROMPT_COLUMN_NAMES[0]: "" if prompt is None else str(prompt)},
                                ensure_ascii=False) + "\n")
    return path


# --------------------------------------------------------------------------- results

def started_path(jsonl_path: str | Path) -> Path:
    """The started-calls journal of a results JSONL (``x.jsonl`` -> ``x.started.jsonl``)."""
    path = Path(jsonl_path)
    return path.with_name(f"{path.stem}.started{path.suffix or '.jsonl'}")


def interrupted_record(row: "InputRow") -> dict[str, Any]:
    """The result of a row whose call was in flight when the run stopped (see the module docstring)."""
    return {"row": row.index, "prompt_hash": row.hash, "prompt": row.prompt, "input": row.fields,
            "status": INTERRUPTED, "error": INTERRUPTED_ERROR}


def results_paths(out: str | Path) -> tuple[Path, Path]:
    """(JSONL source of truth, CSV) for an output name: ``x.csv`` or ``x.jsonl`` gives both."""
    out = Path(out)
    base = out.with_suffix("") if out.suffix.lower() in (".csv", ".jsonl") else out
    return base.with_name(base.name + ".jsonl"), base.with_name(base.name + ".csv")


@dataclass
class ResultsStore:
    """The append-only JSONL results file of one batch.

    Each record has at least ``row`` (input row index) and ``prompt_hash``. A record is
    written (and flushed to disk) as soon as its row is done; records may arrive out of row
    order when rows run concurrently, and :meth:`iter_records` reads them back in row order.
    """

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._lock = threading.Lock()

    @property
    def started_path(self) -> Path:
        """The journal of rows whose paid call was sent (``x.started.jsonl`` beside ``x.jsonl``)."""
        return started_path(self.path)

    def mark_started(self, row: "InputRow") -> None:
        """Journal that ``row``'s paid call goes out now; on disk before this returns (call it first)."""
        self._append_lines(self.started_path, [{"row": row.index, "prompt_hash": row.hash, "at": time.time()}])

    def started(self) -> dict[int, str]:
        """Row index -> prompt hash of every row journalled as sent (a damaged line is skipped)."""
        out: dict[int, str] = {}
        if not self.started_path.exists():
            return out
        with self.started_path.open("rb") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                    out.setdefault(int(record["row"]), str(record.get("prompt_hash", "")))
                except (ValueError, KeyError, TypeError):
                    continue
        return out

    def in_flight(self) -> dict[int, str]:
        """Rows journalled as sent that have no record: their call was cut off by the run stopping."""
        done = self.done()
        return {row: h for row, h in self.started().items() if row not in done}

    def statuses(self) -> dict[int, set[str]]:
        """Row index -> the statuses of its records."""
        out: dict[int, set[str]] = {}
        for row, _, _, status in self._scan():
            out.setdefault(row, set()).add(status)
        return out

    def repair(self) -> None:
        """Cut a half-written last line (the process was killed mid-write)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with self.path.open("rb+") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 1))
            if fh.read(1) == b"\n":
                return
            # Walk back to the last newline.
            pos = size
            while pos > 0:
                step = min(_BLOCK, pos)
                fh.seek(pos - step)
                block = fh.read(step)
                cut = block.rfind(b"\n")
                if cut >= 0:
                    fh.truncate(pos - step + cut + 1)
                    return
                pos -= step
            fh.truncate(0)

    def done(self) -> dict[int, str]:
        """Row index -> prompt hash of every row already in the file."""
        self.repair()
        return {row: h for row, h, _, _ in self._scan()}

    def _scan(self) -> Iterator[tuple[int, str, int, str]]:
        """(row, prompt hash, byte offset, status) of every record; a damaged line is skipped."""
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            offset = 0
            for line in fh:
                start = offset
                offset += len(line)
                try:
                    record = json.loads(line)
                    yield int(record["row"]), str(record.get("prompt_hash", "")), start, str(record.get("status"))
                except (ValueError, KeyError, TypeError):
                    continue

    def check_matches(self, source: BatchFile) -> dict[int, str]:
        """Rows already done for this input; UserError if the file holds another input's results."""
        done = self.done()
        if not done:
            return done
        wanted = {i: done[i] for i in done}
        for row in source.iter_rows():
            expected = wanted.pop(row.index, None)
            if expected is not None and expected != row.hash:
                raise UserError(
                    f"{self.path} already holds results for a different input (row {row.index + 1} has another "
                    "prompt). Choose another output file, or delete it to start over."
                )
            if not wanted:
                break
        if wanted:
            raise UserError(f"{self.path} holds results for rows the input does not have (the input has "
                            f"{source.rows} rows). Choose another output file, or delete it to start over.")
        return done

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Append records, one JSON line each, and flush them to disk."""
        self._append_lines(self.path, records)

    def _append_lines(self, path: Path, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
        with self._lock, path.open("a", encoding="utf-8") as fh:   # threads of one run: whole lines
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    def iter_records(self) -> Iterator[dict[str, Any]]:
        """Records in row order, each row once: the first record written for it, except that an
        ``interrupted`` one gives way to a later record (the row asked again on purpose)."""
        first: dict[int, int] = {}
        interrupted: set[int] = set()
        for row, _, offset, status in self._scan():
            if row in interrupted and status != INTERRUPTED:
                first[row] = offset
                interrupted.discard(row)
            elif row not in first:
                first[row] = offset
                if status == INTERRUPTED:
                    interrupted.add(row)
        with self.path.open("rb") as fh:
            for row in sorted(first):
                fh.seek(first[row])
                yield json.loads(fh.readline())

    def count(self) -> int:
        return len({row for row, _, _, _ in self._scan()})

    def to_csv(self, csv_path: str | Path, columns: Sequence[str],
               flatten: Callable[[dict[str, Any]], dict[str, Any]]) -> Path:
        """Write the records as CSV with ``columns``; ``flatten`` turns a record into a flat row."""
        csv_path = Path(csv_path)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = csv_path.with_name(csv_path.name + ".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
            writer.writerow({c: neutralise_cell(c) for c in columns})   # input column names are uploaded text too
            for record in self.iter_records():
                flat = flatten(record)
                writer.writerow({k: neutralise_cell(_cell(v)) for k, v in flat.items()})
        tmp.replace(csv_path)
        return csv_path


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


__all__ = ["PROMPT_COLUMN_NAMES", "FORMULA_PREFIXES", "INTERRUPTED", "INTERRUPTED_ERROR", "interrupted_record",
           "started_path", "InputRow", "BatchFile", "ResultsStore",
           "prompt_hash", "neutralise_cell", "check_size", "check_utf8", "detect_prompt_column",
           "read_columns", "open_batch_file", "write_prompts_file", "results_paths", "is_jsonl", "preview_input",
           "preview_cell", "check_rows", "PREVIEW_INPUT_ROWS", "PREVIEW_CELL_CHARS"]
