"""The HTML audit report: one self-contained file (``report.html``) made from a run folder (``simulator run``) or a
sweep folder (``simulator sweep``), with its figures embedded, that an auditor can hand on.

Sections: what was run (scenario, assumptions, what each metric means), headline results with 95% confidence
intervals, the tables (all metrics and replicates, mitigation results and flagged accounts for a run; the design,
per-point summary, sensitivity indices and failed points for a sweep), the figures, and how to reproduce it
(command, package version, git commit, seeds, configuration hash, dependency versions). Every piece of text taken
from the folder is HTML-escaped.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import shlex
from collections import Counter, defaultdict
from pathlib import Path

from .results import atomic_write_text

REPORT_FILE = "report.html"

#: Plain-words meaning of each metric (definitions as computed: docs/model.md §7.12; mitigations: docs/model.md and
#: simulator/detection.py).
METRIC_MEANINGS = {
    "impressions": "Times the target's posts were shown to organic users in the world with the campaign "
                   "(simulated scale).",
    "reach": "Organic users who saw at least one of the target's posts, with the campaign.",
    "reach_share": "Share of all organic users who saw at least one of the target's posts, with the campaign.",
    "share_of_voice": "The target's share of all impressions of posts promoting any candidate.",
    "inflation_factor": "Reach with the campaign ÷ reach in the same world (same seed) with the campaign inert: "
                        "how many times the campaign multiplied the target's reach (1 = no effect).",
    "amplification_ratio": "Reach share under the scenario's ranker ÷ reach share under a reverse-chronological "
                           "feed, same seed (Huszár et al. 2022).",
    "amplification": "amplification_ratio − 1: how much more (or less, if negative) the ranker spread the target's "
                     "posts than a chronological feed would have.",
    "attribution.bot": "Share of the target's impressions whose route into the feed was bot engagement.",
    "attribution.paid": "Share of the target's impressions whose route into the feed was a paid influencer.",
    "attribution.recruited": "Share of the target's impressions whose route into the feed was recruited users.",
    "attribution.organic": "Share of the target's impressions whose route into the feed was organic activity.",
    "persuadable_reach": "Organic users reached by the target's posts whose leading position at the start was "
                         "'undecided'.",
    "support_shift": "Change of the target's expected vote share over the run (end − start), with the campaign.",
    "cost_per_1k_inflated": "Campaign dollars per 1,000 extra impressions of the target's posts (vs the inert "
                            "world), at real scale.",
    "gini": "Gini coefficient of impressions over the accounts that posted (0 = equal, → 1 = concentrated).",
    "inflation_factor_unmitigated": "Inflation factor in the paired worlds without any mitigation stage.",
    "mitigation_effect": "Share of the campaign's inflation the mitigation stages removed: 1 − (inflation with the "
                         "stages − 1) ÷ (inflation without − 1); 1 = all of it, 0 = none.",
    "collateral_damage.organic_creators": "Relative change in impressions of organic creators' posts caused by the "
                                          "stages where the campaign is inert (negative = authentic reach lost).",
    "collateral_damage.other_candidates": "Relative change in impressions of authentic posts about the other "
                                          "candidates caused by the stages where the campaign is inert.",
    "collateral_damage_with_campaign.organic_creators": "As collateral_damage.organic_creators, in the worlds with "
                                                        "the campaign active.",
    "collateral_damage_with_campaign.other_candidates": "As collateral_damage.other_candidates, in the worlds with "
                                                        "the campaign active.",
    "precision": "Share of the accounts the stages flagged that really were campaign accounts (bots, recruits, "
                 "paid influencers).",
    "recall.bot": "Share of the bot accounts the stages flagged.",
    "recall.recruited": "Share of the recruited users the stages flagged.",
    "recall.influencer": "Share of the paid influencers the stages flagged.",
    "detection_delay_hours.bot": "Mean hours from a bot's first campaign action to its first flag.",
    "detection_delay_hours.recruited": "Mean hours from a recruit's first campaign action to its first flag.",
    "detection_delay_hours.influencer": "Mean hours from a paid influencer's first campaign action to its first "
                                        "flag.",
}
HEADLINE = ("reach_share", "inflation_factor", "amplification", "share_of_voice", "attribution.bot",
            "attribution.paid", "attribution.recruited", "attribution.organic", "support_shift",
            "cost_per_1k_inflated")
MITIGATION_HEADLINE = ("inflation_factor_unmitigated", "mitigation_effect", "collateral_damage.organic_creators",
                       "collateral_damage.other_candidates", "precision", "recall.bot", "recall.recruited",
                       "recall.influencer", "detection_delay_hours.bot")
MAX_TABLE_ROWS = 300

CSS = """
body{font:15px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1b1b1b;max-width:1100px;margin:2em auto;
padding:0 1.2em}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.4em}.sub{color:#555;margin-top:0}
table{border-collapse:collapse;margin:.6em 0 1em;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#f2f2f2}td.n{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap}
.wide{overflow-x:auto}figure{margin:1em 0 1.6em}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:13px}pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:.6em;overflow-x:auto;
font-size:12px;white-space:pre-wrap}.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em .8em}
.bad{color:#a40000}nav ol{columns:2}code{background:#f3f3f3;padding:0 3px}
"""


class ReportError(ValueError):
    """The folder cannot be reported on. One line for the user."""


# ----------------------------------------------------------------------------------------------------------------
# HTML helpers
# ----------------------------------------------------------------------------------------------------------------


def esc(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def fmt(v) -> str:
    if v is None or v == "":
        return "—"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if f != f:
        return "—"
    if abs(f) >= 1e4 and f.is_integer():
        return f"{f:,.0f}"
    return f"{f:.4g}"


def ci_text(s: dict) -> str:
    if s.get("ci_low") is None or s.get("ci_high") is None:
        return "—"
    return f"[{fmt(s['ci_low'])}, {fmt(s['ci_high'])}]"


def table(header: list, rows: list[list], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    out = ['<div class="wide"><table><thead><tr>']
    out += [f"<th>{esc(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="n">{esc(c)}</td>' if i in numeric else f"<td>{esc(c)}</td>"
                                    for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def details(summary: str, body_html: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{body_html}</details>"


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def page(title: str, subtitle: str, sections: list[tuple[str, str, str]]) -> str:
    nav = "".join(f'<li><a href="#{esc(sid)}">{esc(head)}</a></li>' for sid, head, _ in sections)
    body = "".join(f'<section id="{esc(sid)}"><h2>{esc(head)}</h2>{content}</section>'
                   for sid, head, content in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>{esc(title)}</title><style>{CSS}</style></head>'
            f'<body><header><h1>{esc(title)}</h1><p class="sub">{esc(subtitle)}</p></header>'
            f"<nav><ol>{nav}</ol></nav>{body}"
            '<footer><p class="sub">Written by <code>simulator report</code> from the files of this folder.</p>'
            "</footer></body></html>\n")


# ----------------------------------------------------------------------------------------------------------------
# Reading a folder
# ----------------------------------------------------------------------------------------------------------------


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: missing") from None
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: cannot read ({exc})") from None


def _csv(path: Path) -> tuple[list[str], list[dict]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read ({exc})") from None


def leaves(node: dict, prefix: str = "") -> dict[str, dict]:
    """{dotted name: summary} of metrics.json's nested metrics (a summary holds 'mean')."""
    out = {}
    for k, v in node.items():
        if isinstance(v, dict) and "mean" not in v:
            out.update(leaves(v, prefix + k + "."))
        elif isinstance(v, dict):
            out[prefix + k] = v
    return out


def _get(cfg: dict, path: str):
    node = cfg
    for p in path.split("."):
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def scenario_facts(cfg: dict) -> list[list[str]]:
    """The assumptions of a scenario an auditor reads first, from its resolved configuration."""
    pop = cfg.get("population", {})
    organic, real = pop.get("organic_users"), pop.get("real_users")
    scale = (real / organic) if organic and real else None
    rows = [["scenario", f"{cfg.get('name', '')}: {cfg.get('description', '')}"],
            ["length", f"{cfg.get('days')} days in steps of {cfg.get('step_hours')} h; the vote is at the end"],
            ["world", f"{fmt(organic)} simulated organic users standing for {fmt(real)} real users "
                      f"(one simulated user = {fmt(scale)} real)"],
            ["feed ranker", str(_get(cfg, "ranker.name"))]]
    camp = cfg.get("campaign", {})
    if camp:
        bots, infl, rec = camp.get("bots", {}), camp.get("influencers", {}), camp.get("recruits", {})
        rows.append(["campaign", "active" if camp.get("enabled") else "inert (its actors do nothing visible)"])
        if bots:
            n_real = bots.get("bot_share", 0) * (real or 0)
            rows.append(["bots", f"bot_share {fmt(bots.get('bot_share'))} (≈{fmt(round(n_real))} at real scale), "
                                 f"registered {fmt(bots.get('dormancy_days'))} days before day 0, woken on day "
                                 f"{fmt(bots.get('activation_day'))}; bursts: {fmt(bots.get('burst_fraction'))} of "
                                 f"the network within {fmt(bots.get('burst_window'))} min (+ jitter "
                                 f"{fmt(bots.get('burst_jitter'))} min); ${fmt(bots.get('bot_cost'))} per bot"])
        if infl:
            rows.append(["paid influencers", f"{fmt(infl.get('count'))} influencers, budget "
                                             f"${fmt(infl.get('budget'))}, undisclosed share "
                                             f"{fmt(infl.get('undisclosed_share'))}"])
        if rec:
            rows.append(["recruited users", f"recruited_share {fmt(rec.get('recruited_share'))} of organic users, "
                                            f"from day {fmt(rec.get('recruit_day'))}"])
    stages = cfg.get("mitigations") or []
    rows.append(["mitigation stages", ", ".join(
        f"{s.get('name')} (from day {fmt(s.get('start_day'))})" for s in stages) or "none"])
    op = cfg.get("opinion", {})
    if op:
        rows.append(["opinion dynamics", f"persuasion {fmt(op.get('persuasion'))}" if op.get("enabled") else "off"])
    return rows


ASSUMPTIONS = (
    "<p>Every number below is a property of the agent-based model with the configuration shown, not an estimate of "
    "what happened on a real platform. The model's definitions, assumptions and their sources are in "
    "<code>docs/model.md</code> (ODD protocol; metrics in §7.12; \"Assumptions and their sources\") and every "
    "configuration field in <code>docs/scenario-reference.md</code>. Each replicate runs paired worlds from the "
    "same seed: the scenario as given, the same world with the campaign inert, and the same world under a "
    "reverse-chronological feed (and, with mitigation stages, the first two without them), so the effects are "
    "measured against the same users, posts and random draws. Confidence intervals are 95% Student-t intervals over "
    "independent replicates (spawned seeds); none is shown when fewer than two replicates gave a value.</p>")


def definitions(names) -> str:
    rows = [[n, METRIC_MEANINGS[n]] for n in names if n in METRIC_MEANINGS]
    return table(["metric", "what it means"], rows) if rows else ""


def reproduction(man: dict, extra_rows: list[list[str]]) -> str:
    cmd = man.get("command")
    rows = [["command", shlex.join(cmd) if isinstance(cmd, list) else str(cmd)],
            ["package", f"{_get(man, 'package.name')} {_get(man, 'package.version')}"],
            ["git commit", str(man.get("git_commit"))]] + extra_rows
    rows += [["started", str(man.get("started_at"))], ["wall time", f"{fmt(man.get('wall_time_seconds'))} s"],
             ["platform", json.dumps(man.get("platform"), sort_keys=True)]]
    deps = man.get("dependencies") or {}
    rows.append(["dependencies", ", ".join(f"{k} {v}" for k, v in sorted(deps.items()))])
    return table(["", ""], rows)


def figures(folder: Path, paths: list[Path]) -> str:
    if not paths:
        return "<p>No figures in this folder.</p>"
    return "".join(figure(p, f"{p.stem} ({p.relative_to(folder)})") for p in paths)


# ----------------------------------------------------------------------------------------------------------------
# Run folders
# ----------------------------------------------------------------------------------------------------------------


def flagged_summary(path: Path) -> str:
    header, rows = _csv(path)
    if not rows:
        return "<p>No account was flagged.</p>"
    worlds = "world" in header
    count: Counter = Counter()
    first: dict = defaultdict(list)
    for r in rows:
        key = (r.get("world", ""), r.get("stage", ""), r.get("true_kind", ""))
        count[key] += 1
        try:
            first[key].append(float(r.get("flagged_at_hours", "")))
        except ValueError:
            pass
    out = []
    for key in sorted(count):
        hours = sorted(first[key])
        med = hours[len(hours) // 2] if hours else None
        out.append(([key[0]] if worlds else []) + [key[1], key[2], count[key], fmt(hours[0] if hours else None),
                                                   fmt(med)])
    head = (["world"] if worlds else []) + ["stage", "true kind", "flags (all replicates)", "first flag (h)",
                                            "median flag time (h)"]
    reps = len({r.get("replicate") for r in rows})
    note = ("<p>Accounts flagged by each stage (first flag per account and stage), by their true kind, over "
            f"{reps} replicate(s). In the <em>inert</em> world the campaign does nothing, so every flag there is a "
            "false positive.</p>")
    n = len(head)
    return note + table(head, out, numeric={n - 3, n - 2, n - 1})


def run_report(folder: Path) -> str:
    man = _json(folder / "manifest.json")
    doc = _json(folder / "metrics.json")
    cfg = man.get("config") or {}
    metrics = leaves(doc.get("metrics", {}))
    name = man.get("scenario") or cfg.get("name", "")
    reps = doc.get("replicates")
    sections = []

    what = table(["", ""], scenario_facts(cfg) + [
        ["replicates", f"{reps} (root seed {man.get('seed')})"],
        ["paired worlds", ", ".join(f"{k} → {v}" for k, v in (man.get("worlds") or {}).items())]])
    sections.append(("what", "What was run", what + ASSUMPTIONS))

    def metric_rows(names):
        return [[n, fmt(metrics[n].get("mean")), ci_text(metrics[n]), metrics[n].get("n"),
                 METRIC_MEANINGS.get(n, "")] for n in names if n in metrics]

    head = ["metric", "mean", "95% CI", "n", "what it means"]
    sections.append(("headline", "Headline results", table(head, metric_rows(HEADLINE), numeric={1, 2, 3})))
    if cfg.get("mitigations"):
        body = table(head, metric_rows(MITIGATION_HEADLINE), numeric={1, 2, 3})
        if (folder / "flagged.csv").is_file():
            body += "<h3>Flagged accounts</h3>" + flagged_summary(folder / "flagged.csv")
        sections.append(("mitigations", "Mitigation stages", body))

    per_rep = doc.get("per_replicate") or []
    names = sorted(metrics)
    body = table(head, metric_rows(names), numeric={1, 2, 3})
    if per_rep:
        body += "<h3>Per replicate</h3>" + table(["metric"] + [f"replicate {i}" for i in range(len(per_rep))],
                                                 [[n] + [fmt(r.get(n)) for r in per_rep] for n in names],
                                                 numeric=set(range(1, len(per_rep) + 1)))
    sections.append(("tables", "All metrics", body))
    sections.append(("figures", "Figures", figures(folder, sorted(folder.glob("*.png")))))
    repro = reproduction(man, [
        ["root seed", str(man.get("seed"))],
        ["replicate spawn keys", json.dumps(man.get("spawn_keys"))],
        ["configuration hash", str(man.get("config_hash"))],
        ["scenario file", str(man.get("scenario_path"))]])
    repro += details("Resolved configuration (every field)", pre(json.dumps(cfg, indent=2, sort_keys=True)))
    sections.append(("reproduce", "Reproduction", repro))
    return page(f"Amplification audit: {name}",
                f"{reps} replicate(s), seed {man.get('seed')}, ranker {_get(cfg, 'ranker.name')}", sections)


# ----------------------------------------------------------------------------------------------------------------
# Sweep folders
# ----------------------------------------------------------------------------------------------------------------


def factor_rows(man: dict) -> list[list[str]]:
    rows = []
    for f in man.get("factors", []):
        if f.get("kind") == "levels":
            if len(f.get("fields", [])) > 1 or f.get("fields") != [f.get("name")]:
                vals = "; ".join(f"{lv['label']}: " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in
                                                               lv["values"].items()) for lv in f["levels"])
            else:
                vals = ", ".join(lv["label"] for lv in f["levels"])
        else:
            vals = f"from {fmt(f.get('min'))} to {fmt(f.get('max'))}" + (
                f" in {f['steps']} steps" if f.get("steps") else "") + (" (rounded to integers)" if f.get("integer")
                                                                        else "")
        rows.append([f.get("name"), ", ".join(f.get("fields", [])), vals])
    return rows


def _unit_records(folder: Path, failed_rows: list[dict]) -> list[tuple[dict, str]]:
    out = []
    for r in failed_rows:
        path = folder / "units" / f"p{int(r['point_id']):06d}-r{int(r['replicate']):04d}.json"
        try:
            tb = json.loads(path.read_text(encoding="utf-8")).get("traceback", "")
        except (OSError, ValueError):
            tb = "(record unreadable)"
        out.append((r, tb))
    return out


def sweep_report(folder: Path) -> str:
    man = _json(folder / "manifest.json")
    header, points = _csv(folder / "points.csv")
    sheader, summary = _csv(folder / "summary.csv")
    params = man.get("parameter_columns", [])
    analysed = man.get("metrics_analysed", [])
    name = Path(str(man.get("sweep_file", folder.name))).stem
    sections = []

    base = man.get("base_scenario", {})
    what = []
    if man.get("description"):
        what.append(f"<p>{esc(man['description'])}</p>")
    what.append(table(["", ""], [
        ["sweep file", str(man.get("sweep_file"))],
        ["base scenario", f"{base.get('name')} ({base.get('path')})"],
        ["fixed for every point", ", ".join(f"{k} = {json.dumps(v)}" for k, v in (man.get("fixed") or {}).items())
         or "—"],
        ["--set overrides", " ".join(man.get("overrides") or []) or "—"],
        ["design", str(man.get("design")) + (f", samples = {man['samples']}" if man.get("samples") else "")
         + (f", levels = {man['levels']}" if man.get("levels") else "")],
        ["points × replicates", f"{man.get('points')} × {man.get('replicates')} = {man.get('units')} runs "
                                f"(root seed {man.get('seed')}; replicate r uses the same seed at every point)"],
        ["metrics analysed", ", ".join(analysed)]]))
    what.append("<h3>Varied parameters</h3>" + table(["parameter", "fields", "values"], factor_rows(man)))
    what.append("<h3>Base scenario (before the varied parameters)</h3>" +
                table(["", ""], scenario_facts(base.get("config") or {})))
    what.append(ASSUMPTIONS + "<h3>Metrics analysed</h3>" + definitions(analysed))
    sections.append(("what", "What was run", "".join(what)))

    failed = [r for r in points if r.get("status") != "ok"]
    status = (f"<p>{len(points) - len(failed)} of {len(points)} runs succeeded"
              + (f'; <span class="bad">{len(failed)} failed</span> (listed under "Failed points").' if failed
                 else ".") + "</p>")

    def cell(row, m):
        mean = row.get(f"{m}.mean", "")
        lo, hi = row.get(f"{m}.ci_low", ""), row.get(f"{m}.ci_high", "")
        return fmt(mean) + (f" [{fmt(lo)}, {fmt(hi)}]" if lo != "" and hi != "" else "")

    head_rows = []
    for m in analysed:
        vals = [(float(r[f"{m}.mean"]), r) for r in summary if r.get(f"{m}.mean", "") != ""]
        if not vals:
            head_rows.append([m, "—", "", "—", ""])
            continue
        lo, hi = min(vals, key=lambda v: v[0]), max(vals, key=lambda v: v[0])
        where = lambda r: ", ".join(f"{c} = {r[c]}" for c in params)  # noqa: E731
        head_rows.append([m, cell(lo[1], m), where(lo[1]), cell(hi[1], m), where(hi[1])])
    headline = status + "<p>Lowest and highest point means (95% CI over replicates) of each analysed metric:</p>"
    headline += table(["metric", "lowest", "at", "highest", "at"], head_rows)
    sections.append(("headline", "Headline results", headline))

    rows = [[r["point_id"]] + [r[c] for c in params] + [r.get("replicates_ok", "")] + [cell(r, m) for m in analysed]
            for r in summary[:MAX_TABLE_ROWS]]
    body = ("<p>Mean over replicates of each point with its 95% CI. Every metric of every run is in "
            "<code>points.csv</code>; every metric's mean, CI and n per point in <code>summary.csv</code>.</p>")
    body += table(["point"] + params + ["runs ok"] + analysed, rows, numeric={0})
    if len(summary) > MAX_TABLE_ROWS:
        body += f"<p>First {MAX_TABLE_ROWS} of {len(summary)} points shown; all are in summary.csv.</p>"
    sections.append(("tables", "Results per point", body))

    if (folder / "mitigations.csv").is_file():   # a sweep over stage sets: its comparison (docs/mitigations.md §6)
        from .sweep.mitigations import COMPARED

        _, comparison = _csv(folder / "mitigations.csv")
        rows = [[r["point_id"]] + [r[c] for c in params] + [cell(r, m) for m, _ in COMPARED]
                for r in comparison[:MAX_TABLE_ROWS]]
        body = ("<p>Each stage set against the same campaign, same seeds: the share of the campaign's inflation of "
                "reach and of its extra impressions that the stages removed, their collateral damage on authentic "
                "creators (measured with the campaign inert; negative = exposure lost), and how well they detected "
                "the campaign's accounts, scored against the ground truth (mean, 95% CI). Definitions: "
                "docs/mitigations.md §3.</p>")
        body += table(["point"] + params + [label for _, label in COMPARED], rows, numeric={0})
        sections.append(("mitigations", "Mitigation comparison", body))

    sens_path = folder / "sensitivity.json"
    if sens_path.is_file():
        sens = _json(sens_path)
        idx = ("S1", "S1_conf", "ST", "ST_conf") if sens.get("design") == "sobol" else (
            "mu_star", "mu_star_conf", "sigma", "mu")
        rows, skipped = [], []
        for m, res in sens.get("metrics", {}).items():
            if res.get("status") != "ok":
                skipped.append(f"<li>{esc(m)}: {esc(res.get('reason'))}</li>")
                continue
            for p, v in res["indices"].items():
                rows.append([m, p] + [fmt(v.get(k)) for k in idx])
        expl = ("<p>Sobol' indices of each parameter on the per-point mean: S1 is the share of the metric's variance "
                "due to the parameter alone, ST the share it is involved in (with interactions); _conf is the half "
                "width of a 95% bootstrap interval.</p>" if sens.get("design") == "sobol" else
                "<p>Morris screening on the per-point mean: μ* is the mean absolute elementary effect of the "
                "parameter (its overall influence), σ the spread of its effects (non-linearity or interactions); "
                "μ*_conf is the half width of a 95% bootstrap interval.</p>")
        body = expl + table(["metric", "parameter", *idx], rows, numeric={2, 3, 4, 5})
        if skipped:
            body += "<p>Not analysed:</p><ul>" + "".join(skipped) + "</ul>"
        sections.append(("sensitivity", "Sensitivity analysis", body))

    if failed:
        body = table(["point", "replicate", "parameters", "error"],
                     [[r["point_id"], r["replicate"], ", ".join(f"{c} = {r[c]}" for c in params), r["error"]]
                      for r in failed[:MAX_TABLE_ROWS]])
        for r, tb in _unit_records(folder, failed[:20]):
            body += details(f"traceback of point {r['point_id']}, replicate {r['replicate']}", pre(tb))
        body += "<p>Rerunning the same <code>simulator sweep</code> command retries the failed runs.</p>"
        sections.append(("failed", "Failed points", body))

    sections.append(("figures", "Figures", figures(folder, sorted(folder.glob("*.png"))
                                                   + sorted((folder / "plots").glob("*.png")))))
    sessions = man.get("sessions") or []
    repro = reproduction(man, [
        ["sweep content hash", str(man.get("sweep_hash"))],
        ["root seed", f"{man.get('seed')}; replicate r uses SeedSequence({man.get('seed')}).spawn(R)[r] "
                      "at every point (seed column r of points.csv: root/r)"],
        ["base configuration hash", str(base.get("config_hash"))],
        ["commits of the runs", ", ".join(man.get("unit_git_commits") or [])],
        ["compute time (all runs)", f"{fmt(man.get('compute_seconds_total'))} s"],
        ["sessions", "; ".join(f"{s.get('started_at')}: {s.get('engine')} × {s.get('workers')}, "
                               f"{s.get('units_run')} runs, {fmt(s.get('wall_time_seconds'))} s" for s in sessions)]])
    repro += details("Sweep file", pre(man.get("sweep_text", "")))
    repro += details("Base scenario, resolved (every field)",
                     pre(json.dumps(base.get("config"), indent=2, sort_keys=True)))
    sections.append(("reproduce", "Reproduction", repro))
    return page(f"Sweep audit: {name}", f"design {man.get('design')}, {man.get('points')} points × "
                                        f"{man.get('replicates')} replicates, seed {man.get('seed')}", sections)


# ----------------------------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------------------------


def folder_kind(folder: Path) -> str:
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder}: no such folder")
    if (folder / "sweep.json").is_file():
        if not ((folder / "points.csv").is_file() and (folder / "manifest.json").is_file()):
            raise ReportError(f"{folder}: the sweep has not finished (no points.csv or manifest.json); rerun its "
                              "`simulator sweep` command first")
        return "sweep"
    if (folder / "metrics.json").is_file() and (folder / "manifest.json").is_file():
        return "run"
    raise ReportError(f"{folder}: not a run folder (metrics.json and manifest.json, from `simulator run`) or a sweep "
                      "folder (sweep.json, points.csv and manifest.json, from `simulator sweep`)")


def write_report(folder: Path) -> Path:
    """Write ``report.html`` into a run or sweep folder and return its path."""
    folder = Path(folder)
    kind = folder_kind(folder)
    try:
        text = sweep_report(folder) if kind == "sweep" else run_report(folder)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, ReportError):
            raise
        raise ReportError(f"{folder}: unexpected content ({type(exc).__name__}: {exc})") from None
    path = folder / REPORT_FILE
    atomic_write_text(path, text)
    return path
