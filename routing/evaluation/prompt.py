"""Read a prompt: what kind of task it is and what answer format it asks for.

:func:`analyze_prompt` returns a :class:`PromptInfo` with the detected kinds (several may
apply), the final question of a few-shot prompt, multiple-choice options, whether the
prompt wants a terse answer, the programming language asked for, the function names it
mentions, the tests (asserts, doctests) it gives, and whether it asks for one function (a unit
whose behaviour can be checked) rather than a whole program.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KINDS: tuple[str, ...] = (
    "coding", "math", "creative", "factual", "visual", "multiple_choice", "general",
)

# Programming languages: canonical name -> fence tags / prompt spellings.
LANGUAGE_TAGS: dict[str, tuple[str, ...]] = {
    "python": ("python", "py", "python3", "py3", "ipython", "pycon"),
    "javascript": ("javascript", "js", "node", "nodejs", "jsx", "mjs"),
    "typescript": ("typescript", "ts", "tsx"),
    "java": ("java",),
    "c": ("c",),
    "cpp": ("cpp", "c++", "cc", "cxx", "hpp"),
    "csharp": ("csharp", "cs", "c#"),
    "rust": ("rust", "rs"),
    "go": ("go", "golang"),
    "ruby": ("ruby", "rb"),
    "php": ("php",),
    "swift": ("swift",),
    "kotlin": ("kotlin", "kt"),
    "scala": ("scala",),
    "sql": ("sql", "mysql", "postgresql", "sqlite", "plsql"),
    "bash": ("bash", "sh", "shell", "zsh", "console", "powershell", "ps1"),
    "r": ("r",),
    "haskell": ("haskell", "hs"),
    "lua": ("lua",),
    "perl": ("perl", "pl"),
    "matlab": ("matlab", "octave"),
    "html": ("html", "xml", "svg"),
    "css": ("css", "scss"),
}
# How the prompt names each language in prose ("in Python", "a C++ program"...).
_PROMPT_LANGUAGE_RES: dict[str, re.Pattern[str]] = {
    "python": re.compile(r"\bpython\d?\b", re.I),
    "javascript": re.compile(r"\b(javascript|node\.?js|js)\b", re.I),
    "typescript": re.compile(r"\btypescript\b", re.I),
    "java": re.compile(r"\bjava\b(?!\s*script)", re.I),
    "cpp": re.compile(r"\b(c\+\+|cpp)(?![\w+])", re.I),
    "csharp": re.compile(r"\b(c#|c sharp|csharp)", re.I),
    "c": re.compile(r"\b(in|using|write|a|the|ANSI|pure)\s+C\b(?![+#])"),
    "rust": re.compile(r"\brust\b(?! (stain|color|colour|belt))", re.I),
    "go": re.compile(r"\b(golang|in go|go (program|function|code|routine|module)s?)\b", re.I),
    "ruby": re.compile(r"\bruby\b(?! (red|ring))", re.I),
    "php": re.compile(r"\bphp\b", re.I),
    "swift": re.compile(r"\bswift(ui)?\b(?= (code|function|program|class|struct|app))|\bin swift\b", re.I),
    "kotlin": re.compile(r"\bkotlin\b", re.I),
    "scala": re.compile(r"\bscala\b", re.I),
    "sql": re.compile(r"\b(sql|mysql|postgres(ql)?|sqlite)\b", re.I),
    "bash": re.compile(r"\b(bash|shell script|zsh|powershell)\b", re.I),
    "r": re.compile(r"\b(in|using)\s+R\b|\bR (code|function|script|program)\b"),
    "haskell": re.compile(r"\bhaskell\b", re.I),
    "lua": re.compile(r"\blua\b", re.I),
    "perl": re.compile(r"\bperl\b", re.I),
    "matlab": re.compile(r"\b(matlab|octave)\b", re.I),
    "html": re.compile(r"\bhtml\b", re.I),
    "css": re.compile(r"\bcss\b", re.I),
}

_CODING_RE = re.compile(
    r"\b(write|implement|create|code|build|fix|debug|refactor|optimi[sz]e)\b[^.?!\n]{0,60}"
    r"\b(function|method|class|program|script|code|algorithm|api|endpoint|query|regex|"
    r"module|library|snippet|bug|unit tests?|decorator|component)\b"
    r"|\b(def|return|import|#include|console\.log|public static|fn main)\b[^\n]*[(:{;]"
    r"|```|\bstack ?trace\b|\bcompiler? (error|warning)\b|\bsyntax error\b|\bsegfault\b"
    r"|\b(time|space) complexity\b|\bleetcode\b|\bdata ?structure\b"
    r"|\b(how (do|can|to|would|should) (i|you|we)?|way to|write|implement|fix|using|use|in)\b[^.?!\n]{0,80}"
    r"\b(python|javascript|typescript|java|c\+\+|c#|rust|golang|ruby|php|kotlin|swift|sql|bash|pytorch|"
    r"tensorflow|numpy|pandas|react|django|flask|node\.?js|rest api|regex|powershell)\b"
    r"|\b(python|javascript|typescript|java|rust|golang|sql|bash|pytorch|numpy|pandas|react)\b[^.?!\n]{0,40}"
    r"\b(code|script|function|program|snippet|implementation|query)\b",
    re.I,
)
_MEDIA_SCRIPT_RE = re.compile(
    r"\bscript\s+(for|of|about)\s+(a|an|the)?\s*(\w+\s+)?(youtube|video|film|movie|play|podcast|show|scene|"
    r"commercial|ad|episode|skit|wedding|speech|story)\b|\b(movie|film|tv|video|podcast|show|wwe|wedding|"
    r"theat(er|re)|play) script\b", re.I)
_MATH_RE = re.compile(
    r"\b(calculate|compute|solve|evaluate|simplify|factor(i[sz]e)?|integrate|differentiate|"
    r"derivative|integral|equation|probability|how many|how much|sum of|product of|"
    r"remainder|divisible|prime|percent(age)?|average|mean|median|ratio|area|volume|"
    r"perimeter|radius|prove|theorem|matrix|vector|polynomial|logarithm|sqrt|square root|"
    r"find the value|what is the value|greatest|least common|gcd|lcm|chances?|odds|expected value|"
    r"interest rate|compound interest|apr|maximi[sz]e|minimi[sz]e|estimate|combinations?|permutations?|"
    r"length of|distance|slope|speed|velocity|acceleration)\b"
    r"|\d\s*[-+*/^×÷]\s*\d|\\frac|\\sqrt|\$[^$]*[=^_][^$]*\$|\b[xyn]\s*[=<>]\s*\d",
    re.I,
)
_CREATIVE_RE = re.compile(
    r"\b(write|compose|create|tell|draft|come up with|imagine|invent|make up)\b[^.?!\n]{0,50}"
    r"\b(story|stories|poem|poetry|haiku|limerick|sonnet|song|lyrics|rap|verse|tale|fable|"
    r"screenplay|script for|dialogue|monologue|joke|riddle|slogan|fiction|narrative|ballad|"
    r"fairy ?tale|short story|scene|blog post|speech|toast|character|punchlines?|jokes|battle|"
    r"roleplay|role-play|letter|essay|story)\b"
    r"|\b(creative|imaginative|fictional|once upon a time|in the style of|continue the story|"
    r"role-?play|pretend (to be|you are)|act as)\b"
    r"|\b(poema|poème|gedicht|cuento|histoire|geschichte|canción|chanson|lied|conto|poesia|racconto)\b"
    r"|诗|故事|小说|歌词|詩|物語",
    re.I,
)
_VISUAL_RE = re.compile(
    r"\b(describe|depict|paint|sketch|portray|visuali[sz]e|draw|illustrate)\b[^.?!\n]{0,60}"
    r"\b(image|picture|photo|painting|scene|landscape|appearance|look|looks|view|room|"
    r"setting|outfit|design|logo|character|face|building|sunset|place|city)\b"
    r"|\bwhat does [^?]{1,60} look like\b|\bvisual(ly)? descri|\bdescribe (the )?(colou?rs?|shape)",
    re.I,
)
_FACTUAL_RE = re.compile(
    r"^[ \t]*(who|what|when|where|which|why|how|is|are|was|were|did|does|do|can|name|list|"
    r"explain|define|describe|tell me about|summari[sz]e|compare)\b"
    r"|\b(who (is|was|were|invented|discovered|wrote)|when (did|was|were)|where (is|was|are)|"
    r"what (is|are|was|were)|history of|capital of|definition of|explain|difference between|"
    r"facts? about|according to)\b",
    re.I | re.M,
)
_EXPLAIN_RE = re.compile(
    r"\b(explain|how (do|does|can|to|would|should)|why|teach|tutorial|guide|steps?|"
    r"examples?|illustrate|show me|what are (some|the) (ways|tips|methods|examples))\b",
    re.I,
)
_SHORT_QUESTION_RE = re.compile(
    r"^\s*(who|what|when|where|which|whose|how (many|much|old|long|far|tall|big)|is|are|was|were|does|do|did|"
    r"can|name|define)\b", re.I)
_TERSE_RE = re.compile(
    r"without (any )?explanation|no explanation|do not explain|don'?t explain|"
    r"\bonly (the|a|one|with|a single) (single )?(letter|choice|option|number|word|answer|value|name)|"
    r"\b(answer|respond|reply) (only )?(with|using) (only |just )?(the |a |one |a single )?"
    r"(letter|number|word|option|choice|yes or no|true or false)|"
    r"\bjust (the|a) (answer|letter|number|word|name)\b|\bone[- ]word answer\b|"
    r"\bin (one|a single) word\b|\bprint only\b",
    re.I,
)
_OPTION_LINE_RE = re.compile(r"^[ \t]*[(\[]?([A-J])[)\].:][ \t]+(\S[^\n]*)$", re.M)
_INLINE_OPTION_RE = re.compile(r"\(([A-J])\)\s*([^()\n]+?)(?=\s*\([A-J]\)|\s*$)", re.M)
_NUMBERED_OPTION_RE = re.compile(r"\bOption\s*([1-9])\s*[:.)-]\s*([^\n]+?)(?=\s*\bOption\s*[1-9]\s*[:.)-]|\n|$)",
                                 re.I)
_DEF_RE = re.compile(r"^[ \t]*(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", re.M)
_NAMED_FUNCTION_RE = re.compile(
    r"\b(?:function|method|procedure)\s+(?:called|named)?\s*`?([A-Za-z_]\w*)`?\s*\(?"
    r"|`([A-Za-z_]\w*)\s*\([^`]*\)`",
    re.I,
)
#: "Write a (Python) function to ...", "Please implement a ... method", at the start of a sentence.
_FUNCTION_TASK_RE = re.compile(
    r"(?:^|(?<=[.!?:\n])\s*|(?<=,)\s+)(?:please\s+)?(?:write|implement|create|define|complete|code)\s+(?:me\s+)?"
    r"(?:(?:a|an|the|two|one)\s+)?(?:[\w+#-]+\s+){0,3}?(?:function|method)s?\b(?!\s+(?:call|pointer)s?\b)",
    re.I,
)
#: A function stub to complete: a def line followed by its docstring (HumanEval's form).
_STUB_RE = re.compile(r"^[ \t]*(?:async\s+)?def\s+\w+\s*\([^\n]*:[ \t]*\n[ \t]*[rRuU]?(?:\"\"\"|''')", re.M)
_ASSERT_RE = re.compile(r"^[ \t]*(assert\s[^\n]+)$", re.M)
_DOCTEST_RE = re.compile(r"^[ \t]*>>>[ \t]?([^\n]+)\n[ \t]*(?!>>>)([^\n]+)$", re.M)
_WORD_LIMIT_RE = re.compile(
    r"\b(?:in|under|within|at most|no more than|less than|about|around|exactly)\s+(\d{1,4})\s+words\b"
    r"|\b(\d{1,4})[- ]word\b",
    re.I,
)
_CREATIVE_FORM_RE = re.compile(
    r"\b(haiku|limerick|sonnet|poem|song|lyrics|rap|story|tale|fable|joke|riddle|screenplay|"
    r"dialogue|speech|slogan)\b",
    re.I,
)
_BUILTIN_CALLS = {"set", "list", "tuple", "len", "abs", "round", "math.isclose", "isclose", "sorted", "str",
                  "int", "float", "dict", "sum", "all", "any", "max", "min", "frozenset", "bool", "type",
                  "isinstance", "repr", "print"}
_NOT_FUNCTION_NAMES = {"a", "an", "the", "that", "which", "to", "in", "for", "with", "of", "is", "and", "or"}


@dataclass
class PromptInfo:
    """What the evaluator needs to know about a prompt."""

    text: str
    question: str
    kinds: list[str]
    options: dict[str, str] = field(default_factory=dict)
    terse: bool = False
    language: str | None = None
    function_names: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    prompt_code: str = ""
    creative_form: str | None = None
    word_limit: int | None = None
    explanatory: bool = False
    short_answer_ok: bool = False
    #: The prompt asks for one function (or completes a stub, or gives tests): its answer is
    #: right or wrong, as on MBPP / HumanEval; otherwise a coding prompt asks for a program,
    #: an explanation with code, a review - judged on the whole answer.
    function_task: bool = False


def _option_runs(text: str) -> list[tuple[int, dict[str, str]]]:
    """Groups of consecutive lettered option lines (A, B, C...) with their start offset."""
    runs: list[tuple[int, dict[str, str]]] = []
    current: dict[str, str] = {}
    start = 0
    last_end = -1
    for match in _OPTION_LINE_RE.finditer(text):
        label = match.group(1)
        expected = chr(ord("A") + len(current))
        between = text[last_end:match.start()] if last_end >= 0 else ""
        if current and label == expected and between.count("\n") <= 2:
            current[label] = match.group(2).strip()
        else:
            if len(current) >= 2:
                runs.append((start, current))
            current = {label: match.group(2).strip()} if label == "A" else {}
            start = match.start()
        last_end = match.end()
    if len(current) >= 2:
        runs.append((start, current))
    return runs


def _find_options(text: str) -> tuple[dict[str, str], int]:
    """The last multiple-choice option set in the prompt and where it starts (-1: none)."""
    runs = _option_runs(text)
    best: tuple[int, dict[str, str]] | None = runs[-1] if runs else None
    for line_match in re.finditer(r"^[^\n]*\(A\)[^\n]*\(B\)[^\n]*$", text, re.M):
        opts = {m.group(1): m.group(2).strip() for m in _INLINE_OPTION_RE.finditer(line_match.group(0))}
        if len(opts) >= 2 and (best is None or line_match.start() > best[0]):
            best = (line_match.start(), opts)
    numbered = list(_NUMBERED_OPTION_RE.finditer(text))
    firsts = [i for i, m in enumerate(numbered) if m.group(1) == "1"]
    if firsts:
        last_set = numbered[firsts[-1]:]
        opts = {m.group(1): m.group(2).strip() for m in last_set}
        if len(opts) >= 2 and (best is None or last_set[0].start() > best[0]):
            best = (last_set[0].start(), opts)
    if best is None:
        return {}, -1
    return best[1], best[0]


def _final_question(text: str, options_start: int) -> str:
    """The last question of a (possibly few-shot) prompt: the block holding the options."""
    if options_start < 0:
        blocks = re.split(r"\n(?:[ \t]*\n)+", text.strip())
        if len(blocks) > 3 and re.search(r"(?i)\banswer\s*:\s*\S", text):
            return blocks[-1]
        return text
    head = text[:options_start]
    # Previous example ends with "Answer: X" / "Answer:\nX"; cut after the last one.
    cut = 0
    for match in re.finditer(r"(?i)answer\s*:\s*\n?\s*\S+[^\n]*\n", head):
        cut = match.end()
    blank = head.rfind("\n\n", cut)
    start = cut if cut else (blank + 2 if blank >= 0 else 0)
    return text[start:]


def _requested_language(text: str) -> str | None:
    hits = [(m.start(), lang) for lang, rx in _PROMPT_LANGUAGE_RES.items() if (m := rx.search(text))]
    if hits:
        return min(hits)[1]
    if _DEF_RE.search(text) or _ASSERT_RE.search(text) or ">>> " in text:
        return "python"
    return None


def _function_names(text: str, code: str) -> list[str]:
    names: list[str] = []
    names += _DEF_RE.findall(code or text)
    for match in _NAMED_FUNCTION_RE.finditer(text):
        name = match.group(1) or match.group(2)
        if name and name.lower() not in _NOT_FUNCTION_NAMES and ("_" in name or any(c.isupper() for c in name[1:])
                                                                  or match.group(2)):
            names.append(name)
    for line in _ASSERT_RE.findall(text):
        called = [n for n in re.findall(r"([A-Za-z_][\w.]*)\s*\(", line) if n not in _BUILTIN_CALLS]
        if called:
            names.append(called[0].split(".")[-1])
    seen: list[str] = []
    for name in names:
        if name not in seen and name not in _BUILTIN_CALLS:
            seen.append(name)
    return seen


def _doctests(text: str) -> list[str]:
    tests = []
    for match in _DOCTEST_RE.finditer(text):
        expr, expected = match.group(1).strip(), match.group(2).strip()
        if expr and expected and not expected.startswith(("Traceback", "...")):
            tests.append(f"assert ({expr}) == ({expected})")
    return tests


def analyze_prompt(prompt: str) -> PromptInfo:
    """Detect the prompt's kinds and the answer format it asks for."""
    text = prompt or ""
    options, options_start = _find_options(text)
    question = _final_question(text, options_start)
    focus = question if len(question) < len(text) else text
    prompt_code = "\n".join(m.group(0) for m in re.finditer(r"(?ms)^[ \t]*(?:async[ \t]+)?def .*", text)) \
        if _DEF_RE.search(text) else ""
    kinds: list[str] = []
    if options:
        kinds.append("multiple_choice")
    media_script = _MEDIA_SCRIPT_RE.search(focus) and not any(rx.search(focus) for rx in _PROMPT_LANGUAGE_RES.values())
    if (_CODING_RE.search(focus) and not media_script) or (prompt_code and not options):
        kinds.append("coding")
    if _MATH_RE.search(focus) and "coding" not in kinds:
        kinds.append("math")
    if _CREATIVE_RE.search(focus) and "coding" not in kinds:
        kinds.append("creative")
    if _VISUAL_RE.search(focus):
        kinds.append("visual")
    if options or (_FACTUAL_RE.search(focus) and not {"coding", "creative", "visual"} & set(kinds)
                   and not ("math" in kinds and re.search(r"\d", focus))):
        kinds.append("factual")
    if not kinds:
        kinds.append("general")
    form = _CREATIVE_FORM_RE.search(focus)
    limit = _WORD_LIMIT_RE.search(focus)
    explanatory = bool(_EXPLAIN_RE.search(focus))
    short_question = len(focus.split()) <= 20 and bool(_SHORT_QUESTION_RE.search(focus)) and not explanatory
    info = PromptInfo(
        text=text,
        question=question,
        kinds=kinds,
        options=options,
        terse=bool(_TERSE_RE.search(focus)) or bool(options and _TERSE_RE.search(text)),
        language=_requested_language(focus) if "coding" in kinds else None,
        function_names=_function_names(focus, prompt_code),
        tests=[m.group(1).strip() for m in _ASSERT_RE.finditer(text)] + _doctests(text),
        prompt_code=prompt_code,
        creative_form=form.group(1).lower() if form and "creative" in kinds else None,
        word_limit=int(limit.group(1) or limit.group(2)) if limit else None,
        explanatory=explanatory,
        short_answer_ok=short_question or bool(options),
    )
    if "coding" in kinds:
        info.function_task = bool(info.tests) or bool(_STUB_RE.search(text)) or \
            bool(_FUNCTION_TASK_RE.search(focus.strip()))
    return info
