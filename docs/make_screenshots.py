"""The README's screenshots (Ask, Compare all), made again with one command.

    python docs/make_screenshots.py [--out docs]

The app runs in-process with the local protocol server standing in for OpenRouter, so the
answers are scripted (the same text for every model except where set below) and the costs are
the test server's; the routing decisions, the evaluator's scores and the page are the real ones.
Needs Debian's chromium and PyPI playwright (as the browser tests do).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CODE_ANSWER = ("Here is an iterative version:\n\n```python\ndef reverse_list(head):\n    prev = None\n"
               "    while head:\n        head.next, prev, head = prev, head, head.next\n    return prev\n```\n\n"
               "Each step points one node back at the one before it, so the list is reversed in **O(n)** time "
               "and **O(1)** extra space.")
FOLLOW_UP = ("A recursive version reverses the rest first, then hangs the head on the end:\n\n```python\n"
             "def reverse_list(head):\n    if head is None or head.next is None:\n        return head\n"
             "    rest = reverse_list(head.next)\n    head.next.next, head.next = head, None\n    return rest\n```\n\n"
             "It uses O(n) stack, so the loop is the better choice for long lists.")
SHORT = "Reverse it by walking the list and flipping each `next` pointer."
REFUSAL = "I'm sorry, but I can't help with that."


def main(argv: list[str] | None = None) -> int:
    from benchmarks.harness import ProtocolServer, router_settings
    from routing.service import RouterService
    from tests.browser import launch_app, open_page

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def answer(model: str, messages: list) -> str:
        if len(messages) > 1:
            return FOLLOW_UP
        return CODE_ANSWER if "deepseek" in model or "llama" in model else SHORT

    with ProtocolServer() as server, tempfile.TemporaryDirectory() as tmp:
        server.set_model("*", reply=answer, chunk_delay=0.005)
        server.set_model("qwen/qwen-2.5-72b-instruct", reply=REFUSAL)
        service = RouterService(router_settings(server, Path(tmp), selector="auto"), background=False)
        with launch_app(service) as url, open_page(url) as page:
            page.set_viewport_size({"width": 1400, "height": 1000})
            box = page.locator("#ask-prompt textarea")
            box.fill("Write a Python function that reverses a linked list and explain the algorithm")
            page.locator("#ask-button").click()
            page.locator("#ask-totals").get_by_text("1 answer").wait_for(timeout=60000)
            box.fill("Now make it recursive")
            box.press("Enter")
            page.locator("#ask-totals").get_by_text("2 answers").wait_for(timeout=60000)
            page.wait_for_timeout(800)
            page.screenshot(path=str(out / "ask.png"), full_page=True)

            page.get_by_role("tab", name="Compare all").click()
            page.locator("#compare-prompt textarea").fill("Write a Python function that reverses a linked list")
            page.locator("#compare-button").click()
            page.locator("#compare-scatter .js-plotly-plot").wait_for(timeout=60000)
            page.wait_for_timeout(800)
            page.screenshot(path=str(out / "compare.png"), full_page=True)
    print(f"wrote {out / 'ask.png'} and {out / 'compare.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
