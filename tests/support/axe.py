"""axe-core (web/node_modules, npm) run inside a Playwright page against WCAG 2.1 A and AA, and the
assertion the accessibility tests make: no serious or critical violation."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Test-only: the script is evaluated in the page under test, never served by the app. Evaluated
# through the DevTools protocol rather than with add_script_tag, whose inline <script> the pages'
# CSP (script-src 'self') rightly blocks.
AXE_SCRIPT = Path(__file__).resolve().parents[2] / "web/node_modules/axe-core/axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")

RUN_AXE = """
async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags},
                                          resultTypes: ['violations']});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({target: n.target.map(String), summary: n.failureSummary || ''})),
  }));
}
"""


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Every WCAG 2.1 A/AA violation axe finds on ``page`` as it is now (all impacts)."""
    if not AXE_SCRIPT.exists():
        raise AssertionError(f"axe-core is not installed at {AXE_SCRIPT}: run npm ci in web/")
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8") + "\n;undefined")
    # A colour mid-transition (a button just released from its pressed look) is not what the
    # page shows: let CSS transitions end first (endless animations, e.g. the spinner, stay).
    await page.evaluate("""() => Promise.all(document.getAnimations()
        .filter((a) => a instanceof CSSTransition).map((a) => a.finished.catch(() => null)))""")
    violations: list[dict[str, Any]] = await page.evaluate(RUN_AXE, WCAG_TAGS)
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    """One readable block per violation: rule, impact, help, the elements it names."""
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"][:8]:
            lines.append(f"    {' '.join(node['target'])}")
            if node["summary"]:
                lines.append("      " + node["summary"].replace("\n", "\n      "))
        if len(v["nodes"]) > 8:
            lines.append(f"    … and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


async def assert_accessible(page: Any, state: str) -> list[dict[str, Any]]:
    """Fail on any serious or critical WCAG 2.1 A/AA violation on ``page`` (``state`` names the
    page and step in the message); the minor and moderate ones are logged and returned."""
    violations = await axe_violations(page)
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    others = [v for v in violations if v["impact"] not in BLOCKING]
    if others:
        logger.info("axe on %s: minor/moderate\n%s", state, describe(others))
    if blocking:
        raise AssertionError(f"axe on {state}: {len(blocking)} serious/critical violation(s)\n"
                             + describe(blocking))
    return others
