"""Code quality: judge the code in an answer by the code itself.

Steps: find the code (fenced, tagged or bare), name its language, check that it parses
(Python with :mod:`ast`; other languages with balanced brackets and quotes), that it is
complete (no ``...``/TODO/pass-only bodies, not cut off), that it is in the language the
prompt asked for and defines the function the prompt names, and, when allowed, run it:
the prompt's own asserts/doctests are the strongest evidence; without them the answer's
own asserts and ``# Output:`` claims are checked against what the code really prints.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass, field
from functools import lru_cache

from .prompt import LANGUAGE_TAGS, PromptInfo
from .sandbox import RunResult, SandboxUnavailable, run_python, sandbox_status
from .text import CodeBlock, clamp, split_code

_TAG_TO_LANGUAGE = {tag: lang for lang, tags in LANGUAGE_TAGS.items() for tag in tags}
_NON_CODE_TAGS = {"text", "txt", "output", "plaintext", "plain", "console-output", "json", "yaml",
                  "yml", "csv", "markdown", "md", "tests", "test", "toml", "ini", "diff", "log", "result"}
_SIGNATURES: dict[str, tuple[str, ...]] = {
    "python": (r"^[ \t]*def \w+\(.*\)\s*(->[^:]+)?:\s*(#.*)?$", r"^[ \t]*(import \w+|from [\w.]+ import )",
               r"^[ \t]*(elif|else|try|except|finally)\b.*:\s*$", r"\bprint\(", r"^[ \t]*class \w+(\(.*\))?:\s*$",
               r"\bself\.", r"^[ \t]*for \w+(, ?\w+)* in .+:\s*$", r"\bNone\b|\bTrue\b|\bFalse\b",
               r"^[ \t]*return\b[^;]*$", r"^[ \t]*assert\s"),
    "javascript": (r"\bfunction\s*\w*\s*\(", r"^[ \t]*(const|let|var)\s+\w+\s*=", r"=>", r"console\.log",
                   r"\bdocument\.", r"module\.exports|require\("),
    "typescript": (r":\s*(number|string|boolean)\b", r"^[ \t]*interface \w+", r"^[ \t]*(export )?type \w+ ="),
    "java": (r"\bpublic\s+(static\s+)?(class|void|int|String|boolean)\b", r"System\.out\.print",
             r"\bString\[\]\s*args"),
    "c": (r"#include\s*<(stdio|stdlib|string)\.h>", r"\bprintf\s*\(", r"\bmalloc\s*\("),
    "cpp": (r"#include\s*<(iostream|vector|string|algorithm|map)>", r"\bstd::", r"\bcout\s*<<",
            r"using namespace std"),
    "csharp": (r"\bConsole\.Write", r"\busing System\b", r"\bnamespace \w+"),
    "rust": (r"\bfn \w+\s*(<[^>]*>)?\(", r"\blet mut\b", r"println!", r"->\s*(i32|u32|usize|String|Vec)"),
    "go": (r"^[ \t]*package \w+", r"\bfunc \w+\(", r"\bfmt\.", r":="),
    "ruby": (r"^[ \t]*def \w+[^:]*$", r"^[ \t]*end\s*$", r"\bputs\b"),
    "php": (r"<\?php", r"\$\w+\s*=", r"\becho\b"),
    "sql": (r"(?i)\bselect\b.+\bfrom\b", r"(?i)\b(insert into|create table|update \w+ set)\b"),
    "bash": (r"^#!/bin/(ba)?sh", r"^[ \t]*(echo|cd|ls|sudo|apt|pip|npm|export|chmod)\b", r"\$\(\w"),
    "html": (r"<(html|div|body|head|span|p|script)\b",),
}
_SIGNATURE_RES = {lang: [re.compile(p, re.M) for p in pats] for lang, pats in _SIGNATURES.items()}
_CODE_START_RE = re.compile(
    r"^[ \t]*(def |class |import |from \w[\w.]* import |#include|function |public |private |fn |func |"
    r"package |const |let |var |SELECT |CREATE |@\w+|if __name__)", re.M)
_CODE_LINE_RE = re.compile(
    r"^(\s+\S|\s*(def|class|return|import|from|for|while|if|elif|else|try|except|with|assert|print|"
    r"yield|raise|pass|break|continue)\b|\s*(#|//|/\*|\*|\}|\{|@)|.*[;{}]\s*$|\s*\w[\w.\[\], ]*\s*[-+*/]?=\s*\S|"
    r"\s*\w[\w.]*\(.*\)\s*(#.*)?$|\s*[)\]}])")
_PLACEHOLDER_RE = re.compile(
    r"\bTODO\b|\bFIXME\b|your code here|implement (this|me|the logic)|code goes here|"
    r"rest of (the )?code|^[ \t]*(#|//)\s*\.\.\.|^[ \t]*\.\.\.\s*$|/\*\s*\.\.\.\s*\*/|\bnot implemented\b",
    re.I | re.M)
# Read on a line with its trailing spaces stripped: the claim runs to the line's end (a lazy
# ``(.+?)\s*$`` would be quadratic on a long run of spaces).
_OUTPUT_CLAIM_RE = re.compile(
    r"#\s*(?:(?:expected\s+)?output|prints?|returns?|result|=>|->|should (?:print|return|be)|gives)"
    r"[ \t]*(?:will be|is|:|=)?[ \t]*:?[ \t]*(\S.*)$", re.I)
_BRACKETS = {")": "(", "]": "[", "}": "{"}


@dataclass
class CodeReport:
    """The code found in an answer and what checking it showed."""

    blocks: list[CodeBlock] = field(default_factory=list)
    language: str | None = None
    source: str = ""
    parses: bool = False
    complete: bool = True
    truncated: bool = False
    run: RunResult | None = None
    not_run_reason: str = ""


def _block_language(block: CodeBlock) -> str | None:
    if block.lang in _TAG_TO_LANGUAGE:
        return _TAG_TO_LANGUAGE[block.lang]
    if block.lang in _NON_CODE_TAGS:
        return None
    return detect_language(block.code)


def detect_language(code: str) -> str | None:
    """Best guess of the programming language of an untagged code snippet (None: not code)."""
    scores = {lang: sum(1 for rx in rxs if rx.search(code)) for lang, rxs in _SIGNATURE_RES.items()}
    lang, best = max(scores.items(), key=lambda item: item[1])
    if best == 0:
        return None
    if lang in ("python", "ruby") and scores["python"] >= scores["ruby"]:
        return "python"
    if lang == "javascript" and scores["typescript"] >= 1:
        return "typescript"
    if lang == "c" and scores["cpp"] >= 1:
        return "cpp"
    return lang


def _bare_code(answer: str) -> list[CodeBlock]:
    """Code written without fences: from the first code-looking line, the run of code lines."""
    start = _CODE_START_RE.search(answer)
    if start is None:
        return []
    lines = answer[start.start():].splitlines()
    kept: list[str] = []
    blank_run = 0
    for line in lines:
        if not line.strip():
            blank_run += 1
            if blank_run > 1 and kept:
                break
            kept.append(line)
            continue
        blank_run = 0
        if _CODE_LINE_RE.match(line):
            kept.append(line)
        elif kept:
            break
    code = "\n".join(kept).strip("\n")
    if len([ln for ln in kept if ln.strip()]) < 2:
        return []
    return [CodeBlock("", code, closed=True, fenced=False)]


def extract_code(answer: str) -> list[CodeBlock]:
    """Code blocks of an answer (fenced, [TAG]-style or bare), output/data blocks left out."""
    blocks, _ = split_code(answer)
    if not blocks:
        blocks = _bare_code(answer)
    found = []
    for block in blocks:
        lang = _block_language(block)
        if lang is not None and block.code.strip():
            found.append(CodeBlock(lang, block.code, block.closed, block.fenced))
    return found


def _strip_repl(code: str) -> str:
    """Turn an interactive session (>>> / ...) into plain code, dropping output lines."""
    if ">>>" not in code:
        return code
    out = []
    for line in code.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(">>> ") or stripped == ">>>":
            out.append(stripped[4:])
        elif stripped.startswith("... ") or stripped == "...":
            out.append(stripped[4:])
    return "\n".join(out)


@lru_cache(maxsize=4)
def _parse(code: str) -> ast.Module | None:
    """The syntax tree of ``code`` (None when it is not valid Python 3), parsed once per answer:
    several checks read it. Callers must not change the tree."""
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def python_parses(code: str) -> bool:
    """True when ``code`` is valid Python 3."""
    return _parse(code) is not None


def brackets_balanced(code: str) -> bool:
    """Light syntax check for non-Python code: brackets and quotes balance outside comments."""
    stripped = re.sub(r"//[^\n]*|/\*.*?\*/|^[ \t]*#[^\n]*", "", code, flags=re.S | re.M)
    stripped = re.sub(r'"(\\.|[^"\\\n])*"|\'(\\.|[^\'\\\n])*\'|`(\\.|[^`\\])*`', '""', stripped)
    if stripped.count('"') % 2:
        return False
    stack: list[str] = []
    for char in stripped:
        if char in "([{":
            stack.append(char)
        elif char in _BRACKETS:
            if not stack or stack.pop() != _BRACKETS[char]:
                return False
    return not stack


def _stub_functions(tree: ast.AST) -> list[str]:
    """Functions whose body is only pass / ... / a docstring / raise NotImplementedError."""
    stubs = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                                 and isinstance(s.value.value, str))]
            trivial = all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                                       and s.value.value is Ellipsis)
                          or (isinstance(s, ast.Raise) and "NotImplementedError" in ast.dump(s))
                          for s in body)
            if trivial:
                stubs.append(node.name)
    return stubs


def _returns_value(source: str) -> bool:
    """True when some function of ``source`` returns (or yields) a value."""
    for node in ast.walk(_parse(source) or ast.Module([], [])):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Yield, ast.YieldFrom)) or (
                        isinstance(inner, ast.Return) and inner.value is not None):
                    return True
    return False


def _defined_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def python_source(blocks: list[CodeBlock], prompt_code: str = "") -> tuple[str, bool]:
    """Join the Python blocks into one program; complete a body-only answer with the
    prompt's signature (HumanEval style). Returns (source, parses)."""
    parts: list[str] = []
    for block in blocks:
        if block.lang != "python":
            continue
        code = textwrap.dedent(_strip_repl(block.code)).strip("\n")
        if code and code not in parts:
            parts.append(code)
    source = "\n\n".join(parts)
    if python_parses(source):
        return source, bool(source.strip())
    if prompt_code and parts:
        body = textwrap.indent(textwrap.dedent(parts[0]), "    ")
        candidate = prompt_code.rstrip() + "\n" + body + "\n\n" + "\n\n".join(parts[1:])
        if python_parses(candidate):
            return candidate, True
    good = [p for p in parts if python_parses(p)]
    if good and len(good) < len(parts):
        return "\n\n".join(good), False
    return source, False


def _claims_checked(source: str, run: RunResult) -> tuple[int, int]:
    """How many ``print(...)  # Output: X`` claims the code made and how many held."""
    lines = source.splitlines()
    printed: dict[int, str] = {}
    for line_no, text in run.prints:
        printed[line_no] = printed.get(line_no, "") + text
    claims = held = 0
    for number, line in enumerate(lines, start=1):
        if "print(" not in line:
            continue
        match = _OUTPUT_CLAIM_RE.search(line.rstrip())
        if not match:
            continue
        claims += 1
        expected = _normal(match.group(1))
        actual = _normal(printed.get(number, ""))
        if expected and actual and (expected == actual or actual in expected.split("(")[0] or
                                    expected.split("(")[0].strip() == actual):
            held += 1
    return claims, held


def _normal(text: str) -> str:
    text = re.sub(r"\s+", "", text.strip().strip("`")).lower()
    return text.replace('"', "'").rstrip(".")


def analyze_code(info: PromptInfo, answer: str, *, run_code: bool = True) -> CodeReport:
    """Find and check the code of an answer (runs it when ``run_code`` and it is Python)."""
    report = CodeReport(blocks=extract_code(answer))
    if not report.blocks:
        return report
    languages = [b.lang for b in report.blocks]
    wanted = info.language
    report.language = wanted if wanted in languages else max(set(languages), key=languages.count)
    report.truncated = any(not b.closed for b in report.blocks)
    if report.language == "python":
        report.source, report.parses = python_source(report.blocks, info.prompt_code)
        if report.parses:
            tree = _parse(report.source)
            if _stub_functions(tree):
                report.complete = False
    else:
        chosen = [b.code for b in report.blocks if b.lang == report.language]
        report.source = "\n\n".join(chosen)
        report.parses = all(brackets_balanced(c) for c in chosen)
    if _PLACEHOLDER_RE.search(report.source) or report.truncated:
        report.complete = False
    if run_code and report.language == "python" and report.parses:
        status = sandbox_status()
        if not status.available:
            report.not_run_reason = status.reason
        else:
            try:
                report.run = run_python(report.source, list(info.tests or []), subjects=info.function_names)
            except SandboxUnavailable as exc:  # pragma: no cover - the probe said yes a moment ago
                report.not_run_reason = str(exc)
    return report


def score_code(info: PromptInfo, answer: str, *, run_code: bool = True) -> tuple[float, str]:
    """Code quality as a fraction of its maximum, with a short explanation."""
    report = analyze_code(info, answer, run_code=run_code)
    if not report.blocks:
        return 0.0, "no code found"
    notes: list[str] = []
    lang_ok = info.language is None or report.language == info.language
    notes.append(f"{report.language} code" + ("" if lang_ok else f", but {info.language} was asked"))
    static = 0.15
    static += 0.15 if lang_ok else 0.0
    static += 0.3 if report.parses else 0.0
    notes.append("parses" if report.parses else "does not parse")
    if report.complete:
        static += 0.2
    else:
        notes.append("incomplete (truncated, placeholder or stub)")
    names_ok = True
    if report.language == "python" and report.parses:
        defined = _defined_names(_parse(report.source) or ast.Module([], []))
        if info.function_names:
            names_ok = any(n in defined for n in info.function_names)
            if not names_ok:
                notes.append(f"does not define {info.function_names[0]}")
        elif re.search(r"\bfunction\b", info.question, re.I):
            names_ok = bool(defined)
        if names_ok and re.search(r"\bfunction\b", info.question, re.I) and not _returns_value(report.source):
            names_ok = False
            notes.append("its functions return nothing")
    elif info.function_names:
        names_ok = any(re.search(r"\b" + re.escape(n) + r"\b", report.source) for n in info.function_names)
    static += 0.2 if names_ok else 0.0
    if not lang_ok:
        static = min(static, 0.35)

    verify, verify_note = _verification(report, info, run_code)
    notes.append(verify_note)
    if report.run is not None and info.tests:
        fraction = 0.35 * static + 0.65 * verify
    else:
        fraction = 0.5 * static + 0.5 * verify
    if not lang_ok:
        fraction = min(fraction, 0.3)
    return clamp(fraction), "; ".join(n for n in notes if n)


def _verification(report: CodeReport, info: PromptInfo, run_code: bool) -> tuple[float, str]:
    """Evidence from running the code, as a fraction in [0, 1] (about 0.35-0.4: could not check)."""
    run = report.run
    if run is None:
        if report.language == "python" and not report.parses:
            return 0.0, ""
        if report.language == "python":
            if report.not_run_reason:
                return 0.4, f"not run (no OS sandbox here: {report.not_run_reason}; scored statically)"
            return 0.4, "not run (disabled)" if not run_code else "not run"
        return 0.35, "not run (only Python is run)"
    if run.syntax_error:
        return 0.0, "does not compile"
    if info.tests:
        passed = sum(run.tests)
        note = f"passes {passed}/{len(run.tests)} of the prompt's tests"
        if run.timed_out and not run.finished:
            note += " (timed out)"
        elif run.output_overflow:
            note += " (flooded its output)"
        elif run.exited_early:
            note += " (exited before its end)"
        return passed / len(run.tests), note
    if run.output_overflow:
        return 0.15, "wrote more output than allowed"
    if run.exited_early:
        return 0.15, "exited before the end of its code"
    statements = run.statements
    own_asserts = [s for s in statements if s.is_assert]
    own_ok = sum(1 for s in own_asserts if s.ok)
    claims, held = _claims_checked(report.source, run)
    checks = len(own_asserts) + claims
    passed = own_ok + held
    if run.timed_out and not run.finished:
        return 0.3, "timed out"
    if not statements:
        return 0.4, "nothing ran"
    crashes = [s for s in run.failures if not s.is_assert]
    if crashes:
        first = crashes[0].error.split(":")[0]
        if all(s.error.startswith("NameError") for s in crashes):
            # Usage snippets that refer to placeholder variables: weak evidence either way.
            return 0.45, f"examples use undefined names ({first})"
        return 0.15, f"raises {first} when run"
    if checks:
        return 0.15 + 0.85 * passed / checks, f"its own checks hold {passed}/{checks}"
    return 0.6, "runs without error"
