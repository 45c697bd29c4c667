"""Plans as text (like terraform's), markdown for a pull-request comment, and JSON."""

from __future__ import annotations

from evalhub.core.plan import EvaluationAction, Plan, Summary

SYMBOLS = {
    "create": "+",
    "run": "~",
    "retry": "!",
    "rescore": "*",
    "publish": "^",
    "noop": " ",
    "orphan": "-",
}
COLOURS = {
    "create": "32",
    "run": "33",
    "retry": "35",
    "rescore": "36",
    "publish": "34",
    "orphan": "31",
}
UNIT_SYMBOLS = {"run": "~", "retry": "!", "shared": "="}


def summary_line(summary: Summary, actions: list[EvaluationAction]) -> str:
    if not any(a.action != "noop" for a in actions):
        return (
            f"No changes. {summary.noop} evaluation{'s' if summary.noop != 1 else ''} up to date."
        )
    parts = []
    for kind, label in (("create", "to create"), ("run", "to run"), ("retry", "to retry")):
        count = getattr(summary, kind)
        if count or kind != "retry":
            units = sum(
                len([u for u in a.units if u.status != "shared"])
                for a in actions
                if a.action == kind
            )
            parts.append(
                f"{count} {label}"
                + (f" ({units} unit{'s' if units != 1 else ''})" if count else "")
            )
    parts.append(f"{summary.rescore} to rescore")
    if summary.publish:
        parts.append(f"{summary.publish} to publish")
    parts.append(f"{summary.noop} unchanged")
    if summary.orphan:
        parts.append(f"{summary.orphan} orphaned")
    return "Plan: " + ", ".join(parts) + "."


def plan_text(plan: Plan, *, colour: bool = False) -> str:
    def paint(kind: str, text: str) -> str:
        code = COLOURS.get(kind)
        return f"\033[{code}m{text}\033[0m" if colour and code else text

    changed = [a for a in plan.actions if a.action != "noop"]
    lines: list[str] = []
    if changed:
        lines.append("evalhub will perform the following actions:")
        lines.append("")
    width = max((len(a.evaluation) for a in changed), default=0)
    for action in changed:
        head = f"  {SYMBOLS[action.action]} {action.evaluation.ljust(width)}  {action.action}"
        detail = _action_detail(action)
        lines.append(paint(action.action, head) + (f"  ({detail})" if detail else ""))
        for reason in action.reasons if action.action in ("rescore", "publish", "orphan") else []:
            lines.append(f"      {reason}")
        for unit in action.units:
            lines.append(
                f"      {UNIT_SYMBOLS[unit.status]} {unit.key} [{unit.provider}/{unit.benchmark}]"
            )
            for reason in unit.reasons:
                lines.append(f"          {reason}")
    if changed:
        lines.append("")
    lines.append(summary_line(plan.summary, plan.actions))
    return "\n".join(lines)


def _action_detail(action: EvaluationAction) -> str:
    if action.action in ("create", "run", "retry"):
        total = len(action.units) + action.reused
        plural = "s" if total != 1 else ""
        text = (
            f"{len(action.units)} of {total} unit{plural}"
            if action.reused
            else f"{total} unit{plural}"
        )
        return text + (
            f", {action.reused} reused" if action.reused and action.action == "create" else ""
        )
    if action.action in ("rescore", "publish"):
        return "no model calls"
    return ""


def plan_markdown(plan: Plan) -> str:
    lines = ["### evalhub plan", "", f"**{summary_line(plan.summary, plan.actions)}**", ""]
    changed = [a for a in plan.actions if a.action != "noop"]
    if changed:
        lines += ["| | Evaluation | Action | Units | Why |", "|---|---|---|---|---|"]
        for action in changed:
            why = "; ".join(action.reasons) or "—"
            lines.append(
                f"| {_md(SYMBOLS[action.action])} | `{action.evaluation}` | {action.action} "
                f"| {_action_detail(action) or '—'} | {_md(why)} |"
            )
        for action in changed:
            if not action.units:
                continue
            lines += [
                "",
                f"<details><summary><code>{action.evaluation}</code>: units to run</summary>",
                "",
            ]
            for unit in action.units:
                where = f"{unit.provider}/{unit.benchmark}, {unit.status}"
                lines.append(f"- `{unit.key}` ({where}): {_md('; '.join(unit.reasons))}")
            lines += ["", "</details>"]
    unchanged = [a.evaluation for a in plan.actions if a.action == "noop"]
    if unchanged:
        lines += ["", "Unchanged: " + ", ".join(f"`{name}`" for name in unchanged)]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def plan_json(plan: Plan) -> str:
    return plan.model_dump_json(indent=2)
