"""Batch routing on Ray Data: the batch command's ``--engine ray``, for prompt sets of millions.

    python -m routing.batch INPUT --out OUTPUT --engine ray [--address auto|ray://HOST:PORT]
        [--num-actors N] [--batch-size B] [--mode route|answer|compare]

The same rows, columns, summary and per-row functions as the local engine
(:mod:`routing.batch`), spread over a Ray actor pool:

1. **Check** (driver, before Ray starts): INPUT is a file, a folder or a glob of CSV, JSONL or
   Parquet files. Each file is checked exactly as the local engine checks it
   (:func:`routing.batch.io.open_batch_file`: UTF-8, empty, the prompt column, cell counts),
   so bad input gets the same messages and costs no Ray start-up. Files are taken in sorted
   path order; row ``i`` of the batch is row ``i`` of their concatenation (a stable id: the
   local engine's 0-based row index for a single file).
2. **Read** with Ray Data (:class:`PromptBlocksDatasource`, a ``Datasource``): the batch is cut
   into *blocks* of ``batch_size`` rows aligned on each file's row numbers (a block is the same
   rows on every run), and each block not done yet is one Ray read task, which seeks to it
   (byte offsets found on the driver; Parquet by row group) and parses it with the local
   engine's rules (same delimiter, blank lines, JSONL rules).
3. **Route** with ``map_batches(BlockWorker, concurrency=N)``: each actor builds its own
   :class:`routing.service.RouterService` once (the model loads once per actor) and runs the
   local engine's ``route_rows`` / ``answer_row`` / ``compare_row`` on each block
   (``chunk_size`` rows per selector pass, as the local engine). The actor writes the block's
   results as one Parquet part, ``part-<first row>.parquet``, atomically (temporary file,
   fsync, rename), and returns only a one-row receipt.
4. **Resume**: a rerun lists the parts already written and the read tasks skip those blocks,
   so completed blocks are never redone. In answer and compare modes each row is also
   journalled as it finishes (``.part-<first row>.jsonl``, the local engine's ResultsStore),
   so after a kill a half-done block asks only the rows not answered yet (no paid call twice).
5. **Finish** (driver): check the parts cover every row exactly once, write the CSV when
   OUTPUT ends in ``.csv``, and make the local engine's summary (:func:`routing.batch.rows.summarize`
   over the parts) and its three charts (``<OUTPUT>.charts.html``, ``<OUTPUT>.summary.json``), with
   the local engine's writer (:func:`routing.batch.rows.write_outputs`).

OUTPUT ``x.parquet`` (or any name not ending in ``.csv``) is a folder of Parquet parts in row
order: a Parquet dataset (``pandas.read_parquet("x.parquet")``). OUTPUT ``x.csv`` is one CSV,
byte for byte the layout of the local engine's, made from the parts kept in ``x.parts/``.
Columns are the local engine's (:func:`routing.batch.rows.csv_columns`); input columns are text.

Without ``--address`` a private Ray instance starts on this machine (``ray.init(address=
"local")``; it never joins someone else's). With ``--address`` it joins a cluster; then every
node needs this project and its requirements (the same image) and INPUT/OUTPUT on storage
every node sees. The batch command keeps the terminal for its progress bar: what Ray prints on the
driver (warnings, Ray Data's execution log, the core worker's lines) goes to ``<OUTPUT>.ray.log``,
which the summary names.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Sequence

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")   # never phone home
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from routing.batch.rows import (DEFAULT_CHUNK_SIZE, answer_row, check_run_options, check_can_compare, check_mode,
                                compare_row, csv_columns, default_compare_fn, flatten_record, route_rows,
                                summarize, write_outputs)
from routing.batch.io import (InputRow, ResultsStore, _as_prompt, _cell, detect_prompt_column,  # noqa: E402
                              interrupted_record, neutralise_cell, open_batch_file, started_path)
from routing.errors import UserError  # noqa: E402
from routing.files import file_sha256  # noqa: E402

log = logging.getLogger(__name__)

ENGINES: tuple[str, ...] = ("local", "ray")
#: Rows per block (the unit of work, of resume and of one Parquet part) by mode.
DEFAULT_BATCH_SIZE = {"route": 4096, "answer": 256, "compare": 64}
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
INPUT_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json") + PARQUET_SUFFIXES
MANIFEST = "_manifest.json"
#: Object store of a Ray started here (blocks are small; Ray's default is 30% of memory).
DEFAULT_OBJECT_STORE_MB = 512
PART_PREFIX = "part-"
ROW_DIGITS = 12

ProgressFn = Callable[[int, int], None]


# --------------------------------------------------------------------------- input

@dataclass(frozen=True)
class InputFile:
    """One checked input file and where its rows start in the batch."""

    path: str
    format: str              # csv, jsonl or parquet
    columns: tuple[str, ...]
    rows: int
    offset: int              # batch row id of the file's first row
    delimiter: str = ","
    sha256: str = ""


@dataclass(frozen=True)
class RayInput:
    """A checked input: its files in order, the union of their columns, the prompt column."""

    spec: str
    files: tuple[InputFile, ...]
    columns: tuple[str, ...]
    prompt_column: str
    rows: int

    def blocks(self, batch_size: int) -> dict[int, int]:
        """Block first row id -> rows in the block (blocks never straddle two files)."""
        out: dict[int, int] = {}
        for f in self.files:
            for start in range(0, f.rows, batch_size):
                out[f.offset + start] = min(batch_size, f.rows - start)
        return out


def resolve_inputs(spec: str | Path) -> list[Path]:
    """The files of INPUT: a file, a folder (its input files, recursively) or a glob; sorted."""
    text = str(spec)
    path = Path(text)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES
                 and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)]
        if not found:
            raise UserError(f"The folder {path} holds no CSV, JSONL or Parquet files "
                            f"({', '.join(INPUT_SUFFIXES)}).")
        return sorted(found)
    if glob.has_magic(text):
        found = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not found:
            raise UserError(f"No files match {text}.")
        return found
    raise UserError(f"Input file {path} not found.")


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return True
    with path.open("rb") as fh:
        return fh.read(4) == b"PAR1"


def _scan_parquet(path: Path, prompt_column: str | None) -> tuple[list[str], str, int]:
    """(columns, prompt column, rows) of a Parquet file, with the local engine's messages."""
    if not path.is_file():
        raise UserError(f"Input file {path} not found.")
    if path.stat().st_size == 0:
        raise UserError(f"{path.name} is empty: upload a CSV with a prompt column, or JSONL.")
    try:
        meta = pq.ParquetFile(path)
        columns = list(meta.schema_arrow.names)
        rows = meta.metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"{path.name} is not a readable Parquet file: {exc}.") from None
    if not columns:
        raise UserError(f"{path.name} is empty: it has no columns.")
    column = detect_prompt_column(columns, prompt_column)
    if rows == 0:
        raise UserError(f"{path.name} has a header ({', '.join(columns)}) but no rows.")
    return columns, column, rows


def scan_input(spec: str | Path, prompt_column: str | None = None) -> RayInput:
    """Check every input file as the local engine does; every problem is a UserError."""
    paths = resolve_inputs(spec)
    files: list[InputFile] = []
    columns: dict[str, None] = {}
    chosen = prompt_column
    offset = 0
    for path in paths:
        try:
            if _is_parquet(path):
                cols, column, rows = _scan_parquet(path, chosen)
                fmt, delimiter = "parquet", ","
            else:
                source = open_batch_file(path, prompt_column=chosen, max_rows=0, max_mb=0)
                cols, column, rows = source.columns, source.prompt_column, source.rows
                fmt, delimiter = source.format, source.delimiter
        except UserError as exc:
            if len(paths) == 1 or str(path.name) in str(exc):
                raise
            raise UserError(f"{path}: {exc}") from None
        if chosen is None:
            chosen = column
        elif column != chosen:
            raise UserError(f"{path} names its prompt column {column!r}, the other files {chosen!r}: "
                            "rename it, or choose the column with --column.")
        files.append(InputFile(path=str(path.resolve()), format=fmt, columns=tuple(cols), rows=rows,
                               offset=offset, delimiter=delimiter, sha256=file_sha256(path)))
        offset += rows
        for c in cols:
            columns.setdefault(c, None)
    assert chosen is not None
    return RayInput(spec=str(spec), files=tuple(files), columns=tuple(columns), prompt_column=chosen, rows=offset)


def _lines(fh, counter: list[int]) -> Iterator[str]:
    """Decoded lines of a binary file, counting the bytes consumed in ``counter[0]``."""
    first = fh.tell() == 0
    for raw in fh:
        counter[0] += len(raw)
        if first:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
            first = False
        yield raw.decode("utf-8")


def block_offsets(info: InputFile, batch_size: int) -> list[int]:
    """Byte offset where each block of ``batch_size`` rows starts (Parquet: none needed).

    The same row rules as the local engine's reader (``BatchFile.iter_rows``): blank CSV
    records and blank JSONL lines are no rows. Offsets let each block be one Ray read task.
    """
    import csv

    if info.format == "parquet":
        return []
    offsets: list[int] = []
    counter = [0]
    with open(info.path, "rb") as fh:
        lines = _lines(fh, counter)
        if info.format == "jsonl":
            index = 0
            for line in lines:
                start = counter[0] - len(line.encode("utf-8"))
                if not line.strip():
                    continue
                if index % batch_size == 0:
                    offsets.append(start)
                index += 1
            return offsets
        reader = csv.reader(lines, delimiter=info.delimiter)
        next(reader, None)                                  # the header
        index = 0
        start = counter[0]
        for cells in reader:
            if any(c.strip() for c in cells):
                if index % batch_size == 0:
                    offsets.append(start)
                index += 1
            start = counter[0]
    return offsets


def read_block(info: InputFile, prompt_column: str, first: int, count: int, offset: int) -> list[InputRow]:
    """Rows ``first`` .. ``first + count - 1`` of a file (indices within the file), from ``offset``."""
    import csv

    rows: list[InputRow] = []
    if info.format == "parquet":
        meta = pq.ParquetFile(info.path)
        groups, seen, skip = [], 0, None
        for g in range(meta.num_row_groups):
            n = meta.metadata.row_group(g).num_rows
            if seen + n > first and seen < first + count:
                groups.append(g)
                skip = first - seen if skip is None else skip
            seen += n
        table = meta.read_row_groups(groups).slice(skip or 0, count)
        for i, record in enumerate(table.to_pylist()):
            rows.append(InputRow(first + i, _as_prompt(record.get(prompt_column)), record))
        return rows
    with open(info.path, "rb") as fh:
        fh.seek(offset)
        lines = _lines(fh, [0])
        if info.format == "jsonl":
            for line in lines:
                if not line.strip():
                    continue
                value = json.loads(line)
                if isinstance(value, str):
                    value = {"prompt": value}
                rows.append(InputRow(first + len(rows), _as_prompt(value.get(prompt_column)), value))
                if len(rows) == count:
                    break
            return rows
        columns = list(info.columns)
        for cells in csv.reader(lines, delimiter=info.delimiter):
            if not any(c.strip() for c in cells):
                continue
            values = dict(zip(columns, cells + [""] * (len(columns) - len(cells))))
            rows.append(InputRow(first + len(rows), _as_prompt(values.get(prompt_column)), values))
            if len(rows) == count:
                break
    return rows


def _block_table(rows: list[InputRow], offset: int, block: int, block_rows: int) -> pa.Table:
    return pa.table({
        "block": pa.array([block] * len(rows), pa.int64()),
        "block_rows": pa.array([block_rows] * len(rows), pa.int64()),
        "row": pa.array([offset + r.index for r in rows], pa.int64()),
        "prompt": pa.array([r.prompt for r in rows], pa.string()),
        "fields": pa.array([json.dumps(r.fields, ensure_ascii=False, default=str) for r in rows], pa.string()),
    })


def _datasource_class():
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class PromptBlocksDatasource(Datasource):
        """Ray Data datasource of checked input files: one read task per block not done yet.

        A read task seeks to its block (byte offsets found on the driver; Parquet by row
        group) and parses it with the local engine's rules, so a block reaches one actor
        whole, reads run in parallel, and a resumed run never reads a finished block.
        """

        def __init__(self, source: RayInput, batch_size: int, skip: frozenset[int]):
            self._tasks: list[tuple[InputFile, int, int, int]] = []   # file, first row in file, rows, byte offset
            for info in source.files:
                offsets = block_offsets(info, batch_size)
                for k, start in enumerate(range(0, info.rows, batch_size)):
                    if info.offset + start in skip:
                        continue
                    self._tasks.append((info, start, min(batch_size, info.rows - start),
                                        offsets[k] if offsets else 0))
            self._prompt_column = source.prompt_column

        @property
        def num_tasks(self) -> int:
            return len(self._tasks)

        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                           data_context=None) -> list:
            column = self._prompt_column
            tasks = []
            for info, start, count, offset in self._tasks:
                def read(info=info, start=start, count=count, offset=offset):
                    rows = read_block(info, column, start, count, offset)
                    if len(rows) != count:
                        raise RuntimeError(f"{info.path}: block at row {start} has {len(rows)} of {count} rows "
                                           "(the file changed since it was checked?)")
                    yield _block_table(rows, info.offset, info.offset + start, count)
                meta = BlockMetadata(num_rows=count, size_bytes=None, exec_stats=None, input_files=(info.path,))
                tasks.append(ReadTask(read, meta))
            return tasks

    return PromptBlocksDatasource


# --------------------------------------------------------------------------- results

_FLOAT_SUFFIXES = ("_total", "_cost_usd", "_latency_ms")
_INT_COLUMNS = {"row", "prompt_tokens", "completion_tokens", "total_tokens", "fallbacks"}
_FLOAT_COLUMNS = {"confidence", "cost_usd", "latency_ms"}


def result_schema(columns: Sequence[str], input_columns: Sequence[str], pool_ids: Sequence[str]) -> pa.Schema:
    """Arrow types of the result columns (the same in every part): numbers typed, the rest text."""
    n_inputs = len(input_columns)
    fields = []
    for i, name in enumerate(columns):
        if i < n_inputs:
            kind = pa.string()
        elif name in _INT_COLUMNS or (name.endswith("_tokens") and name[: -len("_tokens")] in pool_ids):
            kind = pa.int64()
        elif (name in _FLOAT_COLUMNS or name.startswith("score_")
              or any(name.endswith(s) and name[: -len(s)] in pool_ids for s in _FLOAT_SUFFIXES)):
            kind = pa.float64()
        elif name == "router_correct":
            kind = pa.bool_()
        else:
            kind = pa.string()
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def _convert(value: Any, kind: pa.DataType) -> Any:
    if value is None or value == "":
        return None
    try:
        if pa.types.is_int64(kind):
            return int(value)
        if pa.types.is_float64(kind):
            return float(value)
        if pa.types.is_boolean(kind):
            return bool(value)
    except (TypeError, ValueError):
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)


def records_table(records: Sequence[dict[str, Any]], schema: pa.Schema, n_inputs: int) -> pa.Table:
    """Result records (the local engine's dicts) as a table of the local engine's CSV columns."""
    result_columns = schema.names[n_inputs:]
    flats = [flatten_record(r, result_columns) for r in records]
    return pa.table({f.name: pa.array([_convert(flat.get(f.name), f.type) for flat in flats], f.type)
                     for f in schema}, schema=schema)


def part_name(first_row: int) -> str:
    return f"{PART_PREFIX}{first_row:0{ROW_DIGITS}d}.parquet"


def write_part(parts_dir: Path, first_row: int, table: pa.Table) -> Path:
    """Write one block's part atomically (hidden temporary file, fsync, rename)."""
    final = parts_dir / part_name(first_row)
    tmp = parts_dir / f".{final.name}.{os.getpid()}.tmp"
    pq.write_table(table, tmp)
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    return final


def done_parts(parts_dir: Path) -> dict[int, Path]:
    """First row id -> part file of every block already written."""
    out: dict[int, Path] = {}
    if not parts_dir.is_dir():
        return out
    for p in parts_dir.glob(f"{PART_PREFIX}*.parquet"):
        stem = p.name[len(PART_PREFIX):-len(".parquet")]
        if stem.isdigit():
            out[int(stem)] = p
    return out


@dataclass
class PartsStore:
    """The parts of a Ray batch read back as the local engine's records (for ``summarize``)."""

    parts_dir: Path
    prompt_column: str            # its name among the result columns (``input_`` when it clashes)
    columns: tuple[str, ...] = field(default=())

    def iter_tables(self) -> Iterator[pa.Table]:
        for _, path in sorted(done_parts(self.parts_dir).items()):
            yield pq.read_table(path)

    def iter_records(self) -> Iterator[dict[str, Any]]:
        wanted = ["row", "status", "error", "selected_model", "confidence", "answered_by", "cost_usd",
                  "best_model", "tied", "router_correct", "prompt_tokens", "completion_tokens", self.prompt_column]
        for _, path in sorted(done_parts(self.parts_dir).items()):
            names = set(pq.read_schema(path).names)
            table = pq.read_table(path, columns=[c for c in dict.fromkeys(wanted) if c in names])
            for flat in table.to_pylist():
                record = {k: flat.get(k) for k in ("row", "status", "error", "selected_model", "confidence",
                                                    "answered_by", "cost_usd", "best_model", "tied",
                                                    "router_correct")
                          if flat.get(k) is not None}
                record["prompt"] = flat.get(self.prompt_column) or ""
                if flat.get("prompt_tokens") is not None and flat.get("completion_tokens") is not None:
                    record["usage"] = {"prompt_tokens": flat["prompt_tokens"],
                                       "completion_tokens": flat["completion_tokens"]}
                yield record


def write_csv_from_parts(parts_dir: Path, csv_path: Path, columns: Sequence[str]) -> Path:
    """The local engine's CSV (same header, same cells, formulas neutralised), streamed from the parts."""
    import csv

    tmp = csv_path.with_name(csv_path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(columns))
        for _, path in sorted(done_parts(parts_dir).items()):
            table = pq.read_table(path)
            for values in zip(*(table.column(c).to_pylist() for c in columns)):
                writer.writerow([neutralise_cell(_cell(v)) for v in values])
    tmp.replace(csv_path)
    return csv_path


# --------------------------------------------------------------------------- the actor

class BlockWorker:
    """The callable class of ``map_batches``: one RouterService per actor, one part per block."""

    def __init__(self, settings, mode: str, parts_dir: str, columns: Sequence[str], n_inputs: int,
                 cost_weight: float, chunk_size: int, workers: int, cpus: float, latency_weight: float = 0.0):
        try:
            import torch

            torch.set_num_threads(max(1, int(cpus)))
        except Exception:  # noqa: BLE001 - torch is only needed by the learned selector
            pass
        from routing.service import RouterService

        logging.basicConfig(level=logging.WARNING)
        self.service = RouterService(settings, background=False)
        self.router = self.service.router
        self.mode = mode
        self.parts_dir = Path(parts_dir)
        self.schema = result_schema(columns, columns[:n_inputs], self.service.pool.ids)
        self.n_inputs = n_inputs
        self.cost_weight = cost_weight
        # each actor weighs the latencies its own calls observe (its own health tracker)
        self.latency_weight = latency_weight
        self.chunk_size = chunk_size
        self.workers = max(1, workers)
        self.compare_fn = default_compare_fn(self.router) if mode == "compare" else None

    def __call__(self, batch: pa.Table) -> pa.Table:
        blocks = batch.column("block").to_pylist()
        rows = [InputRow(r, p, json.loads(f)) for r, p, f in zip(batch.column("row").to_pylist(),
                                                                  batch.column("prompt").to_pylist(),
                                                                  batch.column("fields").to_pylist())]
        groups: dict[int, list[InputRow]] = {}
        for block, row in zip(blocks, rows):
            groups.setdefault(block, []).append(row)
        expected = dict(zip(blocks, batch.column("block_rows").to_pylist()))
        for block, block_rows in groups.items():
            if len(block_rows) != expected[block]:     # Ray split a block: never write a short part
                raise RuntimeError(f"block {block} arrived with {len(block_rows)} of its {expected[block]} rows")
        receipts: dict[str, list] = {"first_row": [], "rows": [], "ok": [], "failed": [], "actor_pid": []}
        for block, block_rows in groups.items():
            records = self._run_block(block, block_rows)
            table = records_table(records, self.schema, self.n_inputs)
            write_part(self.parts_dir, block, table)
            self._journal(block).unlink(missing_ok=True)
            started_path(self._journal(block)).unlink(missing_ok=True)
            ok = sum(1 for r in records if r.get("status") == "ok")
            for key, value in (("first_row", block), ("rows", len(records)), ("ok", ok),
                               ("failed", len(records) - ok), ("actor_pid", os.getpid())):
                receipts[key].append(value)
        return pa.table(receipts)

    def _journal(self, block: int) -> Path:
        return self.parts_dir / f".{PART_PREFIX}{block:0{ROW_DIGITS}d}.jsonl"

    def _run_block(self, block: int, rows: list[InputRow]) -> list[dict[str, Any]]:
        if self.mode == "route":
            records: list[dict[str, Any]] = []
            for i in range(0, len(rows), self.chunk_size):
                records += route_rows(self.router, rows[i:i + self.chunk_size], cost_weight=self.cost_weight,
                                      latency_weight=self.latency_weight)
            return records
        # answer / compare: journal each row before its paid call and as it finishes, so a kill never
        # repeats a paid call (a row left in flight is recorded as interrupted, as the local engine does)
        journal = ResultsStore(self._journal(block))
        done = journal.done()
        wanted = {r.index: r.hash for r in rows}
        started = journal.started()
        if any(wanted.get(i) != h for i, h in (done | started).items()):
            journal.path.unlink(missing_ok=True)          # not this block's rows: start the block over
            journal.started_path.unlink(missing_ok=True)
            done, started = {}, {}
        cut = [r for r in rows if r.index in started and r.index not in done]
        if cut:
            journal.append([interrupted_record(r) for r in cut])
            done.update({r.index: r.hash for r in cut})
        todo = [r for r in rows if r.index not in done]
        if self.mode == "compare":
            for row in todo:
                journal.append([compare_row(self.router, row, self.compare_fn, journal.mark_started)])
        else:
            with ThreadPoolExecutor(max_workers=min(self.workers, max(1, len(todo)))) as pool:
                futures = [pool.submit(answer_row, self.router, row, cost_weight=self.cost_weight,
                                       latency_weight=self.latency_weight, before_call=journal.mark_started)
                           for row in todo]
                for future in as_completed(futures):
                    journal.append([future.result()])
        records = [r for r in journal.iter_records() if r["row"] in wanted]
        if sorted(r["row"] for r in records) != sorted(wanted):
            raise RuntimeError(f"block {block}: the journal lacks rows")  # cannot happen; never write a short part
        return records


# --------------------------------------------------------------------------- driver

@dataclass(frozen=True)
class OutputPaths:
    parts_dir: Path          # the Parquet parts (the output itself for Parquet)
    csv: Path | None         # the CSV, when OUTPUT ends in .csv
    base: Path               # OUTPUT without its suffix: <base>.summary.json, <base>.charts.html

    @classmethod
    def of(cls, out: str | Path) -> "OutputPaths":
        out = Path(out)
        suffix = out.suffix.lower()
        if suffix in (".jsonl", ".ndjson", ".json"):
            raise UserError(f"--engine ray writes Parquet or CSV; {out.name} is JSON Lines. "
                            "Name the output x.parquet (a folder of Parquet parts) or x.csv.")
        base = out.with_suffix("") if suffix in (".csv",) + PARQUET_SUFFIXES else out
        if suffix == ".csv":
            return cls(parts_dir=base.with_name(base.name + ".parts"), csv=out, base=base)
        return cls(parts_dir=out, csv=None, base=base)


def _manifest(source: RayInput, mode: str, batch_size: int, columns: Sequence[str]) -> dict[str, Any]:
    return {"engine": "ray", "mode": mode, "prompt_column": source.prompt_column, "batch_size": batch_size,
            "rows": source.rows, "columns": list(columns),
            "files": [{"path": f.path, "rows": f.rows, "sha256": f.sha256} for f in source.files]}


def _check_manifest(parts_dir: Path, wanted: dict[str, Any]) -> int | None:
    """The batch size of an earlier run in ``parts_dir`` (None: none); UserError when it was another batch."""
    path = parts_dir / MANIFEST
    if not path.is_file():
        if done_parts(parts_dir):
            raise UserError(f"{parts_dir} holds result parts but no {MANIFEST}; choose another output, "
                            "or use --start-over.")
        return None
    old = json.loads(path.read_text(encoding="utf-8"))
    same_input = [(f["sha256"], f["rows"]) for f in old.get("files", [])] == \
                 [(f["sha256"], f["rows"]) for f in wanted["files"]]
    if not same_input or old.get("prompt_column") != wanted["prompt_column"]:
        raise UserError(f"{parts_dir} already holds results for a different input. Choose another output, "
                        "or use --start-over.")
    if old.get("mode") != wanted["mode"]:
        raise UserError(f"{parts_dir} holds results of mode {old.get('mode')!r}, not {wanted['mode']!r}. "
                        "Choose another output, or use --start-over.")
    return int(old["batch_size"])


def _set_aside(parts: OutputPaths) -> Path | None:
    if not parts.parts_dir.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{time.time_ns() % 1_000_000_000:09d}"
    kept = parts.parts_dir.with_name(f"{parts.parts_dir.name}.before-{stamp}")
    parts.parts_dir.replace(kept)
    if parts.csv is not None and parts.csv.is_file():
        parts.csv.replace(kept.with_name(kept.name + ".csv"))
    return kept


def init_ray(address: str | None, *, num_cpus: int | None = None, object_store_mb: int | None = None) -> float:
    """Start a private local Ray (no address) or join a cluster; returns the seconds it took."""
    import ray

    start = time.perf_counter()
    if ray.is_initialized():
        return 0.0
    from routing.settings import REPO_ROOT

    repo = str(REPO_ROOT)  # the workers import the project from the repository root
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                                  configure_logging=True)
    if address:
        kwargs["address"] = address
    else:
        kwargs.update(address="local", num_cpus=num_cpus,
                      runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                          [repo] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
                          "RAY_USAGE_STATS_ENABLED": "0"}})
        kwargs["object_store_memory"] = int(object_store_mb or DEFAULT_OBJECT_STORE_MB) * 1024 * 1024
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UserError(f"Could not reach the Ray cluster at {address!r}: {exc}") from None
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return time.perf_counter() - start


@contextlib.contextmanager
def stderr_to(log_file: Path) -> Iterator[None]:
    """While the block runs, this process's stderr (file descriptor 2) is appended to ``log_file``.

    What Ray prints on the driver goes there, whoever prints it: its Python loggers (``ray``,
    Ray Data's execution plan and progress), the C++ core worker's lines, Python warnings, and the
    processes ``ray.init`` starts. A progress bar that must stay on the terminal writes to a copy
    of the terminal's stderr (:func:`routing.batch.rows.run_with_progress_bar`, ``own_terminal``).
    """
    import sys

    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(log, f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} batch run (pid {os.getpid()})\n".encode())
    os.dup2(log, 2)
    os.close(log)
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)
        os.close(saved)


def run_ray(settings, input_spec: str | Path, out: str | Path, *, mode: str = "route",
            prompt_column: str | None = None, batch_size: int | None = None, num_actors: int = 1,
            address: str | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE, cost_weight: float = 0.0,
            workers: int | None = None, actor_cpus: float = 1.0, start_over: bool = False,
            progress: ProgressFn | None = None, charts: bool = True,
            num_cpus: int | None = None, object_store_mb: int | None = None,
            latency_weight: float = 0.0, ray_log: bool = False) -> dict[str, Any]:
    """Check the input, run (or resume) the batch on Ray, write the outputs, return the summary.

    Ray is started (or joined, with ``address``) only when there is work left; when Ray is
    already initialised in this process it is used as it is and left running. ``ray_log`` (the
    batch command): while Ray starts and runs, what it prints goes to ``<OUTPUT>.ray.log`` beside
    the output (:func:`stderr_to`), not into the terminal's progress bar; the summary names it
    (``ray.log_file``).
    """
    from filelock import FileLock, Timeout

    from routing.hub import ProviderHub
    from routing.pool import load_pool
    from routing.settings import pool_files

    mode = check_mode(mode)
    if num_actors < 1:
        raise UserError(f"--num-actors must be at least 1, got {num_actors}.")
    if batch_size is not None and batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}.")
    check_run_options(chunk_size, cost_weight, latency_weight)
    paths = OutputPaths.of(out)
    pool = load_pool(pool_files(settings).live)
    if mode == "compare":
        check_can_compare(SimpleNamespace(hub=ProviderHub(settings, pool, None), pool=pool))
    source = scan_input(input_spec, prompt_column)
    columns = csv_columns(mode, list(source.columns), pool.ids)
    n_inputs = len(source.columns)
    prompt_result_column = columns[list(source.columns).index(source.prompt_column)]

    paths.parts_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(paths.parts_dir) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(f"This batch is already running ({paths.parts_dir.name}); wait for it to finish.") from None
    try:
        set_aside = _set_aside(paths) if start_over else None
        size = batch_size or DEFAULT_BATCH_SIZE[mode]
        earlier = _check_manifest(paths.parts_dir, _manifest(source, mode, size, columns))
        if earlier is not None and earlier != size:
            log.warning("resuming with the earlier run's batch size %d (not %d)", earlier, size)
            size = earlier
        paths.parts_dir.mkdir(parents=True, exist_ok=True)
        (paths.parts_dir / MANIFEST).write_text(json.dumps(_manifest(source, mode, size, columns), indent=1),
                                                encoding="utf-8")
        for stale in paths.parts_dir.glob(f".{PART_PREFIX}*.tmp"):       # a write cut by a kill
            stale.unlink(missing_ok=True)
        blocks = source.blocks(size)
        done = done_parts(paths.parts_dir)
        unknown = set(done) - set(blocks)
        if unknown:
            raise UserError(f"{paths.parts_dir} holds parts this input and batch size do not make "
                            f"(first rows {sorted(unknown)[:3]}); choose another output, or use --start-over.")
        resumed = sum(blocks[b] for b in done)
        finished = resumed
        if progress:
            progress(finished, source.rows)
        start = time.monotonic()
        startup_s = None
        actor_pids: set[int] = set()
        log_file = paths.base.with_name(paths.base.name + ".ray.log") if ray_log else None
        if len(done) < len(blocks):
            with stderr_to(log_file) if log_file is not None else contextlib.nullcontext():
                startup_s = init_ray(address, num_cpus=num_cpus, object_store_mb=object_store_mb)
                receipts = _execute(source, paths.parts_dir, settings, mode, columns, n_inputs, size,
                                    frozenset(done), num_actors, actor_cpus, cost_weight, chunk_size,
                                    max(1, workers or settings.compare_concurrency), actor_pids, latency_weight)
                for receipt in receipts:
                    finished += receipt
                    if progress:
                        progress(finished, source.rows)
        elapsed = time.monotonic() - start
        _check_complete(paths.parts_dir, blocks)
        if paths.csv is not None:
            write_csv_from_parts(paths.parts_dir, paths.csv, columns)
        summary = summarize(PartsStore(paths.parts_dir, prompt_result_column), pool, mode=mode,
                            total_rows=source.rows)
    finally:
        lock.release()
    processed = source.rows - resumed
    summary.update(
        engine="ray", input=str(input_spec), input_files=len(source.files), prompt_column=source.prompt_column,
        columns=list(source.columns), resumed_rows=resumed, processed_this_run=processed,
        elapsed_s=round(elapsed, 3),
        rows_per_s=round(processed / elapsed, 1) if elapsed > 0 and processed else None,
        results_parquet=str(paths.parts_dir), results_csv=str(paths.csv) if paths.csv else None,
        ray={"address": address or "local", "num_actors": num_actors, "batch_size": size,
             "blocks": len(blocks), "blocks_resumed": len(done), "actors_used": len(actor_pids),
             "startup_s": round(startup_s, 3) if startup_s is not None else None,
             "log_file": str(log_file) if log_file is not None and startup_s is not None else None},
        started_over=bool(start_over),
    )
    if set_aside is not None:
        summary["set_aside"] = str(set_aside)
    return write_outputs(summary, pool, paths.base, charts=charts)


def _execute(source: RayInput, parts_dir: Path, settings, mode: str, columns: Sequence[str], n_inputs: int,
             size: int, skip: frozenset[int], num_actors: int, actor_cpus: float, cost_weight: float,
             chunk_size: int, workers: int, actors: set[int], latency_weight: float = 0.0) -> Iterator[int]:
    """Run the pipeline; yields the rows of each block as its part is written (``actors``: their pids)."""
    import ray
    import ray.data

    import warnings

    # Ray warns that one read task (one file) feeds fewer inputs than actors; its blocks still
    # stream to every actor one by one.
    warnings.filterwarnings("ignore", message=".*minimum number of concurrent actors.*")
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.verbose_progress = False
    datasource = _datasource_class()(source, size, skip)
    # Reads take no CPU slot (else N one-CPU actors on N CPUs starve them: a deadlock); one read
    # task per block and no block splitting, so a block reaches one actor whole.
    ds = ray.data.read_datasource(datasource, override_num_blocks=max(1, datasource.num_tasks), num_cpus=0)
    ds = ds.map_batches(
        BlockWorker, batch_size=None, batch_format="pyarrow", num_cpus=actor_cpus,
        # one block per actor at a time: blocks are big, so queueing 4 on the first actor up
        # (Ray's default) leaves the others idle on small jobs
        compute=ray.data.ActorPoolStrategy(size=num_actors, max_tasks_in_flight_per_actor=1),
        fn_constructor_kwargs=dict(settings=settings, mode=mode, parts_dir=str(parts_dir), columns=list(columns),
                                   n_inputs=n_inputs, cost_weight=cost_weight, chunk_size=chunk_size,
                                   workers=workers, cpus=actor_cpus, latency_weight=latency_weight),
    )
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for rows, pid in zip(batch.column("rows").to_pylist(), batch.column("actor_pid").to_pylist()):
                actors.add(int(pid))
                yield int(rows)
    except Exception as exc:  # noqa: BLE001 - a UserError raised in an actor comes back wrapped
        cause = _user_error(exc)
        if cause is not None:
            raise cause from None
        raise


def _user_error(exc: BaseException) -> UserError | None:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, UserError):
            return exc
        exc = getattr(exc, "cause", None) or exc.__cause__
        seen += 1
    return None


def _check_complete(parts_dir: Path, blocks: dict[int, int]) -> None:
    """Every block has its part, each with the block's rows: every row exactly once."""
    done = done_parts(parts_dir)
    missing = sorted(set(blocks) - set(done))
    if missing:
        raise UserError(f"{len(missing)} blocks have no results (first rows {missing[:3]}); rerun the same "
                        "command to finish them.")
    for first, path in done.items():
        rows = pq.ParquetFile(path).metadata.num_rows
        if rows != blocks[first]:
            raise UserError(f"{path.name} holds {rows} rows, its block {blocks[first]}: rerun with --start-over.")


def format_summary(summary: dict[str, Any]) -> str:
    from routing.batch.rows import _format_summary

    text = _format_summary({**summary, "results_csv": summary.get("results_csv") or summary["results_parquet"]})
    r = summary["ray"]
    lines = text.splitlines()
    lines.insert(1, f"ray: {r['num_actors']} actor(s) at {r['address']}, {r['blocks']} blocks of {r['batch_size']} "
                    f"rows ({r['blocks_resumed']} resumed)"
                    + (f", start-up {r['startup_s']:.1f} s" if r.get("startup_s") else ""))
    if r.get("log_file"):
        lines.append(f"ray's own messages: {r['log_file']}")
    return "\n".join(lines)


def main_ray(args, settings) -> int:
    """The batch command with ``--engine ray`` (called by :func:`routing.batch.cli.main`)."""
    from routing.batch.rows import run_with_progress_bar

    return run_with_progress_bar(f"{args.mode} (ray)", lambda progress: run_ray(
        settings, args.input, args.out, mode=args.mode, prompt_column=args.column, batch_size=args.batch_size,
        num_actors=args.num_actors or 1, address=args.address, chunk_size=args.chunk_size,
        cost_weight=args.cost_weight, workers=args.workers, start_over=args.start_over, progress=progress,
        latency_weight=args.latency_weight, ray_log=True), format_summary, args.json, own_terminal=True)


__all__ = ["ENGINES", "DEFAULT_BATCH_SIZE", "RayInput", "InputFile", "scan_input", "resolve_inputs", "run_ray",
           "init_ray", "BlockWorker", "PartsStore", "OutputPaths", "result_schema", "records_table",
           "write_csv_from_parts", "main_ray"]
