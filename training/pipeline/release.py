"""The release gate's file operations: candidate beside the current model, atomic swap, keep prev.

Layout next to the live model folder ``selector_model/``:

* ``selector_model.partial/`` - a candidate being written (a crash leaves it here; it is removed
  by the next run and never read);
* ``selector_model.candidate/`` - a complete candidate awaiting the gate's decision;
* ``selector_model.prev/`` - the model that was live before the last promotion.

Promotion swaps the candidate and the live folder with one ``renameat2(RENAME_EXCHANGE)`` call
where the kernel has it (Linux), so there is never a moment without a complete
``selector_model/``; elsewhere it falls back to two renames.

The code checkout's ``selector_model/`` is never the folder training promotes in: retrained
selectors live in ``<ROUTER_DATA_DIR>/selector/`` (``routing.settings.selector_folders``), and
:func:`rollback` / :func:`versions` given the checkout's folder (what the Training tab passes
when ``ROUTER_SELECTOR_DIR`` is not set) work on that data folder, the shipped model being what
the app falls back to when it holds none.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def sibling(target: Path, suffix: str) -> Path:
    return target.with_name(target.name + suffix)


def partial_dir(target: Path) -> Path:
    return sibling(target, ".partial")


def candidate_dir(target: Path) -> Path:
    return sibling(target, ".candidate")


def prev_dir(target: Path) -> Path:
    return sibling(target, ".prev")


def clean_stale(target: Path) -> list[str]:
    """Remove leftovers of a crashed run; restore the live model from prev if it went missing."""
    notes = []
    for stale in (partial_dir(target), candidate_dir(target)):
        if stale.exists():
            shutil.rmtree(stale, ignore_errors=True)
            notes.append(f"removed an unfinished candidate {stale.name}/ from an earlier run")
    if not target.exists() and prev_dir(target).exists():
        os.rename(prev_dir(target), target)
        notes.append(f"restored {target.name}/ from {prev_dir(target).name}/")
    return notes


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def finish_candidate(target: Path) -> Path:
    """Mark the fully written ``.partial`` folder as a complete candidate."""
    cand = candidate_dir(target)
    if cand.exists():
        shutil.rmtree(cand)
    os.rename(partial_dir(target), cand)
    return cand


def promote(target: Path, label_encoder_file: Path | None = None) -> Path:
    """Make the candidate live; the old live model becomes ``.prev``. Returns the live folder.

    ``label_encoder_file`` (the repository's ``label_encoder.json``) is replaced atomically by
    the candidate's copy after the swap.
    """
    cand = candidate_dir(target)
    prev = prev_dir(target)
    if not cand.is_dir():
        raise FileNotFoundError(f"no complete candidate at {cand}")
    if prev.exists():
        shutil.rmtree(prev)
    if target.exists():
        if _exchange(cand, target):
            os.rename(cand, prev)          # cand now holds the old model
        else:
            os.rename(target, prev)
            os.rename(cand, target)
    else:
        os.rename(cand, target)
    _publish_label_encoder(target, label_encoder_file)
    return target


def _publish_label_encoder(target: Path, label_encoder_file: Path | None) -> None:
    """Replace the repository's ``label_encoder.json`` (atomically) with the live model's copy."""
    if label_encoder_file is not None:
        enc = target / "label_encoder.json"
        if enc.is_file():
            write_json_atomic(Path(label_encoder_file), json.loads(enc.read_text(encoding="utf-8")))


def discard_candidate(target: Path) -> None:
    shutil.rmtree(candidate_dir(target), ignore_errors=True)


def data_folder(target: Path, label_encoder_file: Path | None = None) -> tuple[Path, Path | None, Path | None]:
    """``(folder, label encoder, shipped)``: where a model named ``target`` is really promoted and
    rolled back. The checkout's ``selector_model/`` maps to ``<ROUTER_DATA_DIR>/selector/`` (and
    ``shipped`` is the checkout's folder); the checkout's ``label_encoder.json`` is never written."""
    import dataclasses

    from routing.settings import get_settings, is_shipped_encoder, is_shipped_selector, selector_folders

    target = Path(target)
    if label_encoder_file is not None and is_shipped_encoder(label_encoder_file):
        label_encoder_file = None
    if not is_shipped_selector(target):
        return target, label_encoder_file, None
    folders = selector_folders(dataclasses.replace(get_settings(), selector_dir=target))
    return folders.target, None, target


def rollback(target: Path, label_encoder_file: Path | None = None) -> Path:
    """Make the previous model live again; the one that was live becomes ``.prev`` (so a second
    rollback rolls forward). Atomic where the kernel swaps (renameat2), else three renames.

    The checkout's ``selector_model/`` means the data folder (:func:`data_folder`); there, with no
    previous model, rolling back sets the first retrained model aside (as ``.prev``) so the app
    routes with the shipped one again, and rolling back once more brings it back."""
    target, label_encoder_file, shipped = data_folder(target, label_encoder_file)
    prev = prev_dir(target)
    if shipped is not None and not (prev / "config.json").is_file() and (target / "config.json").is_file():
        if prev.exists():
            shutil.rmtree(prev)
        os.rename(target, prev)
        return shipped
    if not (prev / "config.json").is_file():
        raise FileNotFoundError(f"no previous model at {prev}")
    if not target.exists():
        os.rename(prev, target)
    elif not _exchange(prev, target):
        swap = sibling(target, ".swap")
        if swap.exists():
            shutil.rmtree(swap)
        os.rename(target, swap)
        os.rename(prev, target)
        os.rename(swap, prev)
    _publish_label_encoder(target, label_encoder_file)
    return target


def describe_version(folder: Path) -> dict[str, Any] | None:
    """What a model folder's training report and lineage say (None when there is no model)."""
    if not (folder / "config.json").is_file():
        return None
    info: dict[str, Any] = {"folder": str(folder)}
    report = folder / "training_report.json"
    if report.is_file():
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
        except ValueError:
            data = {}
        metrics = data.get("metrics") or {}
        info.update({k: metrics.get(k) for k in ("n", "accuracy", "macro_f1", "routed_quality")})
        info["gate"] = (data.get("gate") or {}).get("reason")
        info["gate_result"] = data.get("gate") or {}
        # The time the run recorded; a file's mtime is when it was copied or cloned, not trained.
        info["trained_at"] = data.get("trained_at") if isinstance(data.get("trained_at"), (int, float)) else None
    else:
        info["shipped_without_report"] = True
    lineage = folder / "lineage.json"
    if lineage.is_file():
        try:
            info["lineage"] = json.loads(lineage.read_text(encoding="utf-8"))
        except ValueError:
            pass
    return info


def versions(target: Path) -> list[dict[str, Any]]:
    """The live model and the previous one (what rollback would bring back), newest first. The
    checkout's ``selector_model/`` means the data folder, and the shipped model where it holds none."""
    target, _, shipped = data_folder(target)
    out = []
    live = shipped if shipped is not None and not (target / "config.json").is_file() else target
    for name, folder in (("live", live), ("previous", prev_dir(target))):
        info = describe_version(folder)
        if info is not None:
            out.append({"version": name, "shipped": shipped is not None and folder == shipped, **info})
    _latest_measurements(target, out)
    return out


def _latest_measurements(target: Path, rows: list[dict[str, Any]]) -> None:
    """Each version's score in the newest release gate that measured it (``latest``: ``{"metric",
    "value", "n"}``), so the table and the gate quote one measurement: a model's own training
    report scores it on the test split of its run, and a later run's gate scores it again on that
    run's split (the split a person sees in the summary). The newest gate is the live model's own
    (it measured the live model as the candidate and the previous one as the incumbent) or a
    rejected candidate's newer one (it measured the live model as the incumbent)."""
    reports = []
    for name, folder in (("live", target), ("rejected", sibling(target, ".rejected"))):
        info = describe_version(folder)
        if info and info.get("gate_result"):
            reports.append((info.get("trained_at") or 0.0, name, info["gate_result"], info.get("n")))
    if not reports:
        return
    _, name, gate, n = max(reports, key=lambda r: r[0])
    metric = gate.get("metric")
    paired = gate.get("paired") or {}
    n = paired.get("n", n)
    incumbent = gate.get("old_metric") if gate.get("against") == "live" else None  # not the rules' score
    by_version = {"live": gate.get("new_metric"), "previous": incumbent} if name == "live" else {"live": incumbent}
    for row in rows:
        value = by_version.get(row["version"])
        if metric and isinstance(value, (int, float)):
            row["latest"] = {"metric": metric, "value": float(value), "n": n}


def can_roll_back(target: Path) -> bool:
    """Whether :func:`rollback` has something to bring back (the Training tab's button is off otherwise)."""
    target, _, shipped = data_folder(target)
    if (prev_dir(target) / "config.json").is_file():
        return True
    return shipped is not None and (target / "config.json").is_file()


def version_rows(target: Path) -> list[list[Any]]:
    """:func:`versions` as the Training tab's table (:data:`VERSION_COLUMNS`)."""
    import time

    rows = []
    for v in versions(Path(target)):
        if v.get("shipped"):
            when = "shipped with the app"
        elif v.get("trained_at"):
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(v["trained_at"]))
        else:
            when = "not recorded"
        latest = v.get("latest")
        score = f"{latest['metric']} {latest['value']:.4f} ({latest['n']} prompts)" if latest else ""
        data = v.get("lineage") or {}
        rows.append([v["version"], when, score, v.get("n"), v.get("accuracy"), v.get("macro_f1"), v.get("gate") or "",
                     f"{data.get('rows')} log rows {data.get('by_kind')}" if data else ""])
    return rows


#: The Training tab's versions table: the newest gate's score of each version (the figure the
#: run's summary quotes), then what its own training run measured on that run's test split.
VERSION_COLUMNS = ["version", "trained (UTC)", "score in the newest release gate", "its run's test prompts",
                   "its run's accuracy", "its run's macro-F1", "release gate when promoted", "data"]
