//! `report.html`: the story of `report.md` drawn — an SVG timeline per partition of each
//! replica's LEO and HW, its leader epochs, ISR and the faults, then the cluster, the clients and
//! each violation with the events that led to it. One self-contained file (no script, no
//! network): it must open from a CI artifact or a mail attachment. Like `report.md` it reads the
//! trace and history generically; every list and every series is bounded, so a ten-minute run's
//! page stays a few megabytes at most.

mod model;
mod sections;
mod svg;
mod timeline;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::check::Violation;
use crate::report::{seconds, ReportInput};

use model::Model;
use svg::{colour, esc, TimeAxis};
use timeline::Frame;

pub fn html(r: &ReportInput) -> String {
    let model = model::build(r.trace, r.history, r.final_state, r.sim_ms);
    let mut out = String::with_capacity(64 * 1024);
    let title = format!("{} — seed {}", r.scenario, r.seed);
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{}</title><style>{STYLE}</style></head><body>"#,
        esc(&title)
    );
    out.push_str(DEFS);
    header(&mut out, r, &title);
    partitions(&mut out, r, &model);
    sections::violations(&mut out, r);
    sections::cluster(&mut out, &model);
    sections::clients(&mut out, r.history, TimeAxis::whole(model.end_ms));
    sections::events(&mut out, r.trace);
    out.push_str("</body></html>\n");
    out
}

fn header(out: &mut String, r: &ReportInput, title: &str) {
    let class = if r.outcome == "pass" { "pass" } else { "fail" };
    let _ = write!(
        out,
        r#"<header><h1>{}</h1><p class="summary">{}</p><p><span class="outcome {class}">Outcome: {}</span> · {} simulated · trace digest <code>{:016x}</code></p><p>Reproduce: <code>{}</code></p>"#,
        esc(title),
        esc(r.summary),
        esc(r.outcome),
        seconds(r.sim_ms),
        r.digest,
        esc(r.reproduce)
    );
    sections::found(out, r);
    out.push_str(
        r##"<nav><a href="#partitions">Partitions</a> · <a href="#violations">Violations</a> · <a href="#cluster">Cluster</a> · <a href="#clients">Clients</a> · <a href="#events">Events</a></nav></header>"##,
    );
}

/// The partitions of the workload's topics first, then the internal ones (named `__…`, as
/// Kafka names them), folded away.
fn partitions(out: &mut String, r: &ReportInput, model: &Model) {
    let _ = write!(
        out,
        r#"<section id="partitions"><h2>Partitions</h2>{}"#,
        legend()
    );
    if model.partitions.is_empty() {
        out.push_str("<p>No partition was traced.</p>");
    }
    let replica_nodes: BTreeSet<String> = model
        .partitions
        .values()
        .flat_map(|p| p.replicas.keys().cloned())
        .chain(model.node_of_id.values().cloned())
        .collect();
    let frame = Frame {
        model,
        time: TimeAxis::whole(model.end_ms),
        max_offset: None,
        column_px: column_px(model),
        class: "timeline",
        replica_nodes: &replica_nodes,
    };
    let mut by_partition: BTreeMap<&str, Vec<&Violation>> = BTreeMap::new();
    for v in r.violations {
        if let Some(p) = v.partition.as_deref() {
            by_partition.entry(p).or_default().push(v);
        }
    }
    let (internal, workload): (Vec<_>, Vec<_>) = model
        .partitions
        .iter()
        .partition(|(name, _)| name.starts_with("__"));
    for (name, view) in workload {
        let found = by_partition
            .get(name.as_str())
            .map_or(&[][..], Vec::as_slice);
        figure(out, &frame, name, view, found);
    }
    if !internal.is_empty() {
        let _ = write!(
            out,
            "<details><summary>{} internal partitions</summary>",
            internal.len()
        );
        for (name, view) in internal {
            let found = by_partition
                .get(name.as_str())
                .map_or(&[][..], Vec::as_slice);
            figure(out, &frame, name, view, found);
        }
        out.push_str("</details>");
    }
    out.push_str("</section>");
}

/// A busy partition's timeline costs some 120 kB at one column per pixel (a point per column for
/// each of its lines): past eight busy partitions the columns widen, so that the page stays
/// within a few megabytes however many partitions the run has.
fn column_px(model: &Model) -> f64 {
    const BUSY_POINTS: usize = 1000;
    let busy = model
        .partitions
        .values()
        .filter(|p| {
            p.replicas
                .values()
                .map(|r| r.leo.len() + r.hw.len())
                .sum::<usize>()
                > BUSY_POINTS
        })
        .count();
    (busy as f64 / 8.0).ceil().clamp(1.0, 16.0)
}

fn figure(
    out: &mut String,
    frame: &Frame,
    name: &str,
    view: &model::PartitionView,
    violations: &[&Violation],
) {
    let flag = if violations.is_empty() {
        String::new()
    } else {
        format!(
            r#" <span class="flag">{} violation(s)</span>"#,
            violations.len()
        )
    };
    let _ = write!(
        out,
        r#"<figure id="partition-{}"><figcaption><b>{}</b>{flag}</figcaption>{}"#,
        esc(name),
        esc(name),
        timeline::partition_svg(frame, name, view, violations)
    );
    if let Some((time, max_offset)) = timeline::close_up(frame.model, view, !violations.is_empty())
    {
        let zoom = Frame {
            time,
            max_offset: Some(max_offset),
            class: "timeline-zoom",
            ..*frame
        };
        let _ = write!(
            out,
            r#"<figcaption id="close-up-{}">Close-up of {}: {} to {}, offsets 0 to {max_offset}</figcaption>{}"#,
            esc(name),
            esc(name),
            seconds(time.start_ms),
            seconds(time.end_ms),
            timeline::partition_svg(&zoom, name, view, violations)
        );
    }
    out.push_str("</figure>");
}

fn legend() -> String {
    let c = colour(0);
    format!(
        r##"<p class="legend"><svg width="620" height="16"><path d="M2 8H30" stroke="{c}" stroke-width="2.5"/><text x="34" y="12">log end offset (LEO)</text><path d="M160 8H188" stroke="{c}" class="hw"/><text x="192" y="12">high watermark (HW)</text><path d="M320 8H348" class="acked"/><text x="352" y="12">acknowledged</text><circle class="lost key" cx="450" cy="8" r="3.5"/><text x="458" y="12">acknowledged, then lost</text></svg>
Bands: leader epochs, tinted by the leader. Arrows: a replica cutting its log (truncation). Lanes: a thin bar while in the ISR, a thick one while leading, hatched while down. Grey dashed lines: faults; red: violations. Hover for details.</p>"##
    )
}

/// Patterns shared by every SVG of the page.
const DEFS: &str = r##"<svg width="0" height="0" style="position:absolute"><defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff" fill-opacity="0.6"/><line x1="0" y1="0" x2="0" y2="6" stroke="#555" stroke-width="2.5"/></pattern></defs></svg>"##;

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px 24px;color:#222;max-width:1240px}
h1{font-size:22px;margin:4px 0}h2{font-size:18px;border-bottom:1px solid #ccc;margin-top:28px}
code{font:12px ui-monospace,Menlo,Consolas,monospace;background:#f3f3f3;padding:1px 3px}
.outcome{font-weight:bold;padding:1px 6px;border-radius:3px}.pass{background:#dfd}.fail{background:#fdd}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left;font-size:13px}
th{background:#f6f6f6}figure{margin:10px 0 18px}figcaption{margin-bottom:2px}
.flag{color:#fff;background:#c00;border-radius:3px;padding:0 5px;font-size:12px}
.legend{font-size:12px;color:#444}.legend svg{vertical-align:middle}
svg text{font:11px system-ui,sans-serif;fill:#333}svg .tick{fill:#777;font-size:10px}
.grid{stroke:#eee}.frame{fill:none;stroke:#bbb}.lane{fill:none;stroke:#ddd}
.leo{fill:none;stroke-width:2.2}.hw{fill:none;stroke-width:1.4;stroke-dasharray:5 3}
.acked{fill:none;stroke:#000;stroke-width:1.2;stroke-dasharray:1 2}
.lost{fill:#e00;stroke:#fff;stroke-width:1}
.epoch-label{font-size:11px;fill:#444;font-weight:600}.lane-label{font-size:11px}
.fault{stroke:#555;stroke-width:1;stroke-dasharray:4 3}.fault-label{font-size:11px;fill:#333}
.cut line{stroke-width:2}.cut text{font-weight:bold;font-size:11px}
.violation-mark line{stroke:#e00;stroke-width:2}.violation-mark text{fill:#c00;font-weight:bold}
.violation{border:2px solid #c00;background:#fff4f4;border-radius:4px;padding:6px 12px;margin:10px 0}
.violation h3{color:#a00;margin:4px 0;font-size:15px}
.violations-found{border-left:5px solid #c00;padding-left:10px}
ol.events,ul.events{font-size:13px;padding-left:22px}.events .at{color:#666;font-variant-numeric:tabular-nums}
.more{color:#777;font-style:italic}
.story li.cause{font-weight:600;color:#a00}
"#;

#[cfg(test)]
mod tests;
