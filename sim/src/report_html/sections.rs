//! The sections of `report.html` around the partition timelines: what was found, each violation
//! with the events that led to it, the cluster's nodes and leaders, the clients, the events.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::model::{Absence, Model};
use super::svg::{esc, TimeAxis, LEFT, RIGHT, WIDTH};
use super::timeline::mark_label;
use crate::history::{Op, OpType, TraceEvent};
use crate::report::{concerns, describe, notable, seconds, ReportInput};

/// Bounds on the lists, so a long run's page stays small; the rest is in the run's JSON files.
const LISTED_PER_CHECK: usize = 40;
const CHAIN_LEN: usize = 60;
const EVENTS_LISTED: usize = 400;
const ROWS_PER_TABLE: usize = 60;

/// What was expected and what was found, at the top of the page.
pub fn found(out: &mut String, r: &ReportInput) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in r.violations {
        *counts.entry(v.check.as_str()).or_default() += 1;
    }
    for name in r.expected.iter().chain(r.allowed) {
        counts.entry(name.as_str()).or_default();
    }
    if counts.is_empty() {
        out.push_str("<p>Expected no violation; none found.</p>");
        return;
    }
    let class = if r.violations.is_empty() {
        ""
    } else {
        r#" class="violations-found""#
    };
    let _ = write!(
        out,
        r#"<div{class}><table><tr><th>check</th><th>expected</th><th>found</th></tr>"#
    );
    for (name, n) in counts {
        let expectation = crate::report::expectation(r, name);
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{expectation}</td><td>{n}</td></tr>",
            esc(name)
        );
    }
    out.push_str("</table></div>");
}

pub fn violations(out: &mut String, r: &ReportInput) {
    out.push_str(r#"<section id="violations"><h2>Violations</h2>"#);
    if r.violations.is_empty() {
        out.push_str("<p>None.</p></section>");
        return;
    }
    for ((check, partition), list) in crate::report::by_check_and_partition(r.violations) {
        let on = partition
            .map(|p| format!(r##" on <a href="#partition-{}">{}</a>"##, esc(p), esc(p)))
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<article class="violation" data-check="{}"><h3><code>{}</code>{on}: {} found</h3><ul>"#,
            esc(check),
            esc(check),
            list.len()
        );
        for v in list.iter().take(LISTED_PER_CHECK) {
            let _ = write!(
                out,
                r#"<li><span class="at">{}</span> — {}</li>"#,
                seconds(v.at_ms),
                esc(&v.detail)
            );
        }
        more(out, list.len(), LISTED_PER_CHECK, "summary.json");
        out.push_str("</ul>");
        let story = crate::report::first_story(&list, r);
        if story.steps.is_empty() {
            let last_ms = list.iter().map(|v| v.at_ms).max().unwrap_or(0);
            chain(out, &causes(r.trace, partition, last_ms));
        } else {
            story_items(out, &story);
        }
        out.push_str("</article>");
    }
    out.push_str("</section>");
}

/// How the first violation of a group happened (`crate::story`): the record it is about, then
/// each step from its write to the damage, the cause highlighted.
fn story_items(out: &mut String, story: &crate::story::Story) {
    let _ = write!(
        out,
        r#"<p class="story"><b>How it happened</b> — {}.</p>"#,
        esc(&story.headline)
    );
    let s = &story.subject;
    let named: Vec<String> = [
        s.value
            .as_ref()
            .map(|v| format!("value <code>{}</code>", esc(v))),
        s.key
            .as_ref()
            .map(|k| format!("key <code>{}</code>", esc(k))),
        s.partition
            .as_ref()
            .zip(s.offset)
            .map(|(p, o)| format!("{} offset {o}", esc(p))),
        s.process.as_ref().map(|p| format!("by {}", esc(p))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !named.is_empty() {
        let _ = write!(out, "<p>The record: {}.</p>", named.join(", "));
    }
    out.push_str(r#"<ol class="events story">"#);
    for (i, step) in story.steps.iter().enumerate() {
        let (class, mark) = if story.cause == Some(i) {
            (r#" class="cause""#, " ← the cause")
        } else {
            ("", "")
        };
        let _ = write!(
            out,
            r#"<li{class}><span class="at">{}</span> — {}{mark}</li>"#,
            seconds(step.at_ms),
            esc(&step.text)
        );
    }
    out.push_str("</ol>");
}

/// The events that led to a violation that has no story: the notable events of its partition,
/// and from the first fault on every fault and cluster event (a broker fenced, a quorum
/// election), up to its time; the latest `CHAIN_LEN` of them.
fn causes<'a>(
    trace: &'a [TraceEvent],
    partition: Option<&str>,
    until_ms: u64,
) -> (Vec<&'a TraceEvent>, usize) {
    let first_fault_ms = trace
        .iter()
        .find(|e| e.node == "world" && e.kind != "topics-created")
        .map_or(u64::MAX, |e| e.at_ms);
    let own = |e: &TraceEvent| partition.is_none() || e.detail.get("partition").is_some();
    let all: Vec<&TraceEvent> = trace
        .iter()
        .take_while(|e| e.at_ms <= until_ms)
        .filter(|e| notable(e) && concerns(e, partition))
        .filter(|e| own(e) || e.at_ms >= first_fault_ms)
        .collect();
    let skipped = all.len().saturating_sub(CHAIN_LEN);
    (all[skipped..].to_vec(), skipped)
}

fn chain(out: &mut String, (events, skipped): &(Vec<&TraceEvent>, usize)) {
    if events.is_empty() {
        return;
    }
    out.push_str("<p>What led to it:</p><ol class=\"events\">");
    if *skipped > 0 {
        let _ = write!(
            out,
            r#"<li class="more">{skipped} earlier events (in trace.jsonl)</li>"#
        );
    }
    event_items(out, events.iter().copied());
    out.push_str("</ol>");
}

fn event_items<'a>(out: &mut String, events: impl Iterator<Item = &'a TraceEvent>) {
    for e in events {
        let _ = write!(
            out,
            r#"<li><span class="at">{}</span> — {}</li>"#,
            seconds(e.at_ms),
            esc(&describe(e))
        );
    }
}

fn more(out: &mut String, total: usize, shown: usize, file: &str) {
    if total > shown {
        let _ = write!(
            out,
            r#"<li class="more">… and {} more (all in {file})</li>"#,
            total - shown
        );
    }
}

/// The nodes over time (up, down, paused; the quorum's leader), the quorum's leaders and each
/// partition's leaders.
pub fn cluster(out: &mut String, model: &Model) {
    out.push_str(r#"<section id="cluster"><h2>Cluster</h2>"#);
    node_lanes(out, model);
    out.push_str("<h3>KRaft quorum leaders</h3>");
    if model.quorum_leaders.is_empty() {
        out.push_str("<p>No quorum leader was traced.</p>");
    } else {
        out.push_str("<table><tr><th>since</th><th>leader</th><th>epoch</th></tr>");
        for (at_ms, node, epoch) in model.quorum_leaders.iter().take(ROWS_PER_TABLE) {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{epoch}</td></tr>",
                seconds(*at_ms),
                esc(node)
            );
        }
        out.push_str("</table>");
        table_more(out, model.quorum_leaders.len());
    }
    partition_leaders(out, model);
    out.push_str("</section>");
}

fn table_more(out: &mut String, total: usize) {
    if total > ROWS_PER_TABLE {
        let _ = write!(
            out,
            r#"<p class="more">… and {} more (in trace.jsonl)</p>"#,
            total - ROWS_PER_TABLE
        );
    }
}

fn partition_leaders(out: &mut String, model: &Model) {
    out.push_str("<h3>Partition leaders</h3><table><tr><th>partition</th><th>since</th><th>leader epoch</th><th>leader</th><th>ISR then</th></tr>");
    let mut rows = 0;
    let mut total = 0;
    for (name, view) in &model.partitions {
        for epoch in &view.epochs {
            total += 1;
            if rows >= ROWS_PER_TABLE {
                continue;
            }
            rows += 1;
            let isr = view
                .isr
                .iter()
                .take_while(|(t, _)| *t <= epoch.start_ms)
                .last()
                .map(|(_, isr)| {
                    isr.iter()
                        .map(|id| model.node_name(*id))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let leader = if epoch.leader < 0 {
                "none".to_string()
            } else {
                model.node_name(epoch.leader)
            };
            let unclean = if epoch.unclean { " (unclean)" } else { "" };
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{unclean}</td><td>{}</td></tr>",
                esc(name),
                seconds(epoch.start_ms),
                epoch.epoch,
                esc(&leader),
                esc(&isr)
            );
        }
    }
    out.push_str("</table>");
    table_more(out, total);
}

/// One lane per node: green while up, hatched while down or paused, dark while it leads the
/// KRaft quorum; faults as dashed lines.
fn node_lanes(out: &mut String, model: &Model) {
    let time = TimeAxis::whole(model.end_ms);
    let lane = 18.0;
    let top = 6.0;
    let height = top + lane * model.nodes.len() as f64 + 20.0;
    let _ = write!(
        out,
        r#"<svg class="nodes" viewBox="0 0 {WIDTH} {height:.0}" width="{WIDTH}" height="{height:.0}">"#
    );
    let plot_width = WIDTH - LEFT - RIGHT;
    for (row, (node, absences)) in model.nodes.iter().enumerate() {
        let y = top + row as f64 * lane;
        let _ = write!(
            out,
            r##"<text class="lane-label" x="{:.0}" y="{:.1}" text-anchor="end">{}</text><rect x="{LEFT}" y="{y:.1}" width="{plot_width:.0}" height="12" fill="#cfe8cf"/>"##,
            LEFT - 4.0,
            y + 10.0,
            esc(node)
        );
        for (start, end) in quorum_spans(model, node) {
            let _ = write!(
                out,
                r##"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="12" fill="#1b5e20"><title>{} leads the quorum from {start} ms</title></rect>"##,
                time.x(start),
                (time.x(end) - time.x(start)).max(1.0),
                esc(node)
            );
        }
        for &(start, end, absence) in absences {
            let what = if absence == Absence::Down {
                "down"
            } else {
                "paused"
            };
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="12" fill="url(#hatch)"><title>{} {what} from {start} ms to {end} ms</title></rect>"#,
                time.x(start),
                (time.x(end) - time.x(start)).max(1.0),
                esc(node)
            );
        }
    }
    let bottom = top + lane * model.nodes.len() as f64;
    for event in model.marks.iter().take(120) {
        let x = time.x(event.at_ms);
        let _ = write!(
            out,
            r#"<line class="fault" x1="{x:.1}" x2="{x:.1}" y1="0" y2="{bottom:.0}"><title>{}</title></line>"#,
            esc(&mark_label(event))
        );
    }
    time.labels(out, bottom);
    out.push_str("</svg>");
}

/// The spans `node` led the quorum: from each of its leader events to the next leader event.
fn quorum_spans(model: &Model, node: &str) -> Vec<(u64, u64)> {
    let leaders = &model.quorum_leaders;
    leaders
        .iter()
        .enumerate()
        .filter(|(_, (_, n, _))| n == node)
        .map(|(i, (t, _, _))| {
            let end = leaders.get(i + 1).map_or(model.end_ms, |next| next.0);
            (*t, end)
        })
        .collect()
}

/// Each client's operations by kind and outcome, and a lane per client of its completions.
pub fn clients(out: &mut String, history: &[Op], time: TimeAxis) {
    out.push_str(r#"<section id="clients"><h2>Clients</h2>"#);
    let mut counts: BTreeMap<(&str, &str), [usize; 4]> = BTreeMap::new();
    for op in history {
        let i = match op.kind {
            OpType::Invoke => 0,
            OpType::Ok => 1,
            OpType::Fail => 2,
            OpType::Info => 3,
        };
        counts
            .entry((op.process.as_str(), op.f.as_str()))
            .or_default()[i] += 1;
    }
    if counts.is_empty() {
        out.push_str("<p>No client operation was recorded.</p></section>");
        return;
    }
    out.push_str("<table><tr><th>client</th><th>operation</th><th>invoked</th><th>ok</th><th>failed</th><th>unknown (info)</th></tr>");
    for ((process, f), [invoke, ok, fail, info]) in &counts {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{invoke}</td><td>{ok}</td><td>{fail}</td><td>{info}</td></tr>",
            esc(process),
            esc(f)
        );
    }
    out.push_str("</table>");
    client_lanes(out, history, time);
    out.push_str("</section>");
}

/// Completions per pixel column: a grey area for `ok`, red ticks for `fail`, orange for `info`.
fn client_lanes(out: &mut String, history: &[Op], time: TimeAxis) {
    let columns = (WIDTH - LEFT - RIGHT) as usize + 1;
    let mut lanes: BTreeMap<&str, Vec<[u32; 3]>> = BTreeMap::new();
    for op in history {
        let i = match op.kind {
            OpType::Invoke => continue,
            OpType::Ok => 0,
            OpType::Fail => 1,
            OpType::Info => 2,
        };
        let column = ((time.x(op.at_ms) - LEFT) as usize).min(columns - 1);
        let lane = lanes
            .entry(op.process.as_str())
            .or_insert_with(|| vec![[0; 3]; columns]);
        lane[column][i] += 1;
    }
    let lane_h = 22.0;
    let height = lane_h * lanes.len() as f64 + 22.0;
    let _ = write!(
        out,
        r#"<p class="legend">Completions over time: grey, ok (scaled to each client's busiest moment); red, failed; orange, unknown.</p><svg class="clients" viewBox="0 0 {WIDTH} {height:.0}" width="{WIDTH}" height="{height:.0}">"#
    );
    for (row, (process, lane)) in lanes.iter().enumerate() {
        let y = 4.0 + row as f64 * lane_h;
        let _ = write!(
            out,
            r#"<text class="lane-label" x="{:.0}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 4.0,
            y + 13.0,
            esc(process)
        );
        let peak = lane.iter().map(|c| c[0]).max().unwrap_or(0).max(1) as f64;
        let mut area = format!("M{LEFT} {:.1}", y + 16.0);
        let mut level = y + 16.0;
        for c in lane.iter() {
            let next = y + 16.0 - 14.0 * c[0] as f64 / peak;
            if (next - level).abs() > 0.05 {
                let _ = write!(area, "V{next:.1}");
                level = next;
            }
            area.push_str("h1");
        }
        let _ = write!(area, "V{:.1}Z", y + 16.0);
        let _ = write!(out, r##"<path d="{area}" fill="#999"/>"##);
        for (i, c) in lane.iter().enumerate() {
            for (k, fill) in [(1, "#d00"), (2, "#e69f00")] {
                if c[k] > 0 {
                    let _ = write!(
                        out,
                        r#"<rect x="{:.0}" y="{:.1}" width="2" height="16" fill="{fill}"><title>{} {}</title></rect>"#,
                        LEFT + i as f64,
                        y,
                        c[k],
                        if k == 1 { "failed" } else { "unknown" }
                    );
                }
            }
        }
    }
    time.labels(out, 4.0 + lane_h * lanes.len() as f64);
    out.push_str("</svg>");
}

/// The notable events of the whole run, as `report.md`'s timeline.
pub fn events(out: &mut String, trace: &[TraceEvent]) {
    out.push_str(r#"<section id="events"><h2>Events</h2><ol class="events">"#);
    let total = trace.iter().filter(|e| notable(e)).count();
    event_items(out, trace.iter().filter(|e| notable(e)).take(EVENTS_LISTED));
    more(out, total, EVENTS_LISTED, "trace.jsonl");
    if total == 0 {
        out.push_str("<li>Nothing happened but the workload.</li>");
    }
    out.push_str("</ol></section>");
}
