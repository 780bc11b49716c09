//! One partition's timeline as an SVG: leader epochs as shaded bands, each replica's LEO (solid)
//! and HW (dashed) as step lines, the acknowledged prefix, acknowledged writes the final log
//! lost, one ISR lane per replica, faults as grey marks and violations as red ones.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::model::{Absence, Model, PartitionView};
use super::svg::{colour, esc, round_step, step_path, TimeAxis, ValueAxis, LEFT, RIGHT, WIDTH};
use crate::check::Violation;
use crate::history::TraceEvent;
use crate::report::describe;

const LABEL_ROWS: usize = 3;
const ROW: f64 = 13.0;
const PLOT_TOP: f64 = 8.0 + LABEL_ROWS as f64 * ROW;
const PLOT_HEIGHT: f64 = 240.0;
const LANE: f64 = 16.0;
/// Bounds on what one timeline draws, whatever the run.
const MAX_MARKS: usize = 120;
const MAX_LOST_DOTS: usize = 200;
const MAX_VIOLATION_MARKS: usize = 20;
const MAX_CUTS: usize = 30;

/// Everything one drawing needs.
#[derive(Clone, Copy)]
pub struct Frame<'m> {
    pub model: &'m Model<'m>,
    pub time: TimeAxis,
    /// The highest offset drawn; `None`: the partition's highest.
    pub max_offset: Option<i64>,
    /// How wide a column of the downsampled series is: wider when many partitions are busy, so
    /// the page stays a few megabytes.
    pub column_px: f64,
    /// `timeline` for the whole run, `timeline-zoom` for a close-up.
    pub class: &'static str,
    /// Every replica node of the run, so that a node has one colour on every timeline.
    pub replica_nodes: &'m BTreeSet<String>,
}

impl Frame<'_> {
    fn colour_of(&self, node: &str) -> &'static str {
        colour(
            self.replica_nodes
                .iter()
                .position(|n| n == node)
                .unwrap_or(0),
        )
    }
}

pub fn partition_svg(
    frame: &Frame,
    name: &str,
    view: &PartitionView,
    violations: &[&Violation],
) -> String {
    let lanes = lane_nodes(frame.model, view);
    let lanes_top = PLOT_TOP + PLOT_HEIGHT + 22.0;
    let height = lanes_top + LANE * lanes.len() as f64 + 6.0;
    let values = ValueAxis {
        top: PLOT_TOP,
        height: PLOT_HEIGHT,
        max: frame.max_offset.unwrap_or_else(|| top_offset(view)),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="{}" data-partition="{}" viewBox="0 0 {WIDTH} {height:.0}" width="{WIDTH}" height="{height:.0}" role="img" aria-label="timeline of {}">"#,
        frame.class,
        esc(name),
        esc(name)
    );
    epoch_bands(&mut out, frame, view);
    value_grid(&mut out, frame.time, values);
    series(&mut out, frame, view, values, &lanes);
    isr_lanes(&mut out, frame, view, &lanes, lanes_top);
    let bottom = height - 4.0;
    fault_marks(&mut out, frame, bottom);
    violation_marks(&mut out, frame.time, violations, bottom);
    out.push_str("</svg>");
    out
}

/// The replicas drawn, in assignment order (preferred leader first), then any other node that
/// traced a replica of the partition.
fn lane_nodes(model: &Model, view: &PartitionView) -> Vec<(String, Option<i64>)> {
    let mut lanes: Vec<(String, Option<i64>)> = view
        .assigned
        .iter()
        .map(|&id| (model.node_name(id), Some(id)))
        .collect();
    for node in view.replicas.keys() {
        if !lanes.iter().any(|(n, _)| n == node) {
            let id = model
                .node_of_id
                .iter()
                .find(|(_, n)| *n == node)
                .map(|(id, _)| *id);
            lanes.push((node.clone(), id));
        }
    }
    lanes
}

fn top_offset(view: &PartitionView) -> i64 {
    let replicas = view
        .replicas
        .values()
        .flat_map(|r| r.leo.iter().chain(&r.hw));
    let acked = view.acked_end.iter();
    let max = replicas.chain(acked).map(|s| s.1).max().unwrap_or(0);
    // A little headroom, so the highest line does not run along the frame.
    (max + max / 20).max(1)
}

fn epoch_bands(out: &mut String, frame: &Frame, view: &PartitionView) {
    let time = frame.time;
    for (i, epoch) in view.epochs.iter().enumerate() {
        let end = view
            .epochs
            .get(i + 1)
            .map_or(time.end_ms, |next| next.start_ms);
        let (x0, x1) = (time.x(epoch.start_ms), time.x(end));
        let leader = (epoch.leader >= 0).then(|| frame.model.node_name(epoch.leader));
        let (fill, opacity) = match &leader {
            Some(node) => (frame.colour_of(node), if i % 2 == 0 { 0.07 } else { 0.13 }),
            None => ("#d00", 0.12),
        };
        let who = leader.clone().unwrap_or_else(|| "no leader".to_string());
        let unclean = if epoch.unclean { " (unclean)" } else { "" };
        let _ = write!(
            out,
            r#"<rect class="epoch" x="{x0:.1}" y="{PLOT_TOP}" width="{:.1}" height="{PLOT_HEIGHT}" fill="{fill}" fill-opacity="{opacity}"><title>leader epoch {}: {}{unclean}</title></rect>"#,
            (x1 - x0).max(0.5),
            epoch.epoch,
            esc(&who)
        );
        let long = format!("epoch {} · leader {who}{unclean}", epoch.epoch);
        let short = format!("e{} {who}", epoch.epoch);
        let fits = |text: &str| text.chars().count() as f64 * 6.5 + 6.0 < x1 - x0;
        let Some(label) = [long, short].into_iter().find(|l| fits(l)) else {
            continue;
        };
        let _ = write!(
            out,
            r#"<text class="epoch-label" x="{:.1}" y="{:.1}">{}</text>"#,
            x0 + 3.0,
            PLOT_TOP + 11.0,
            esc(&label)
        );
    }
}

/// Horizontal grid lines at round offsets, the time ticks, and the plot's frame.
fn value_grid(out: &mut String, time: TimeAxis, values: ValueAxis) {
    let step = round_step((values.max / 4).max(1) as u64) as i64;
    let mut v = 0;
    while v <= values.max {
        let y = values.y(v);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" x2="{:.0}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{:.0}" y="{:.1}" text-anchor="end">{v}</text>"#,
            WIDTH - RIGHT,
            LEFT - 4.0,
            y + 4.0
        );
        v += step;
    }
    let _ = write!(
        out,
        r#"<text class="axis" x="8" y="{:.0}">offset</text><rect class="frame" x="{LEFT}" y="{PLOT_TOP}" width="{:.0}" height="{PLOT_HEIGHT}"/>"#,
        PLOT_TOP + PLOT_HEIGHT / 2.0,
        WIDTH - LEFT - RIGHT
    );
    time.labels(out, PLOT_TOP + PLOT_HEIGHT);
}

/// The acknowledged prefix, each replica's HW and LEO, and the lost acknowledged writes. Lines
/// of replicas that agree would hide each other: each replica is shifted by a pixel or two.
fn series(
    out: &mut String,
    frame: &Frame,
    view: &PartitionView,
    values: ValueAxis,
    lanes: &[(String, Option<i64>)],
) {
    let time = frame.time;
    let acked = step_path(&view.acked_end, time, values, frame.column_px);
    if !acked.is_empty() {
        let _ = write!(
            out,
            r#"<path class="acked" d="{acked}"><title>end of the acknowledged writes</title></path>"#
        );
    }
    let drawn = lanes.iter().filter(|(n, _)| view.replicas.contains_key(n));
    for (i, (node, _)) in drawn.enumerate() {
        let replica = &view.replicas[node];
        let shift = i as f64 * 2.0 - 2.0;
        let c = frame.colour_of(node);
        let _ = write!(
            out,
            r#"<g transform="translate(0 {shift})"><path class="hw" stroke="{c}" d="{}"><title>{} high watermark</title></path><path class="leo" stroke="{c}" d="{}"><title>{} log end offset</title></path></g>"#,
            step_path(&replica.hw, time, values, frame.column_px),
            esc(node),
            step_path(&replica.leo, time, values, frame.column_px),
            esc(node)
        );
    }
    let shown = view.lost.iter().filter(|(t, _)| inside(time, *t));
    cuts(out, frame, view, values);
    for &(at_ms, offset) in shown.take(MAX_LOST_DOTS) {
        let _ = write!(
            out,
            r#"<circle class="lost" cx="{:.1}" cy="{:.1}" r="3.5"><title>offset {offset}, acknowledged at {} ms, is not in the final log</title></circle>"#,
            time.x(at_ms),
            values.y(offset),
            at_ms
        );
    }
}

/// Each truncation as an arrow from the old log end down to the new one, labelled, in the
/// replica's colour: where a log loses what it held.
fn cuts(out: &mut String, frame: &Frame, view: &PartitionView, values: ValueAxis) {
    let time = frame.time;
    let shown = view
        .cuts
        .iter()
        .filter(|c| inside(time, c.at_ms) && c.to < c.from);
    for cut in shown.take(MAX_CUTS) {
        let x = time.x(cut.at_ms);
        let (y0, y1) = (values.y(cut.from), values.y(cut.to));
        let c = frame.colour_of(&cut.node);
        let label = format!("{} cut {} → {}", cut.node, cut.from, cut.to);
        let right = x + label.chars().count() as f64 * 6.5 + 8.0 < WIDTH - RIGHT;
        let (tx, anchor) = if right {
            (x + 6.0, "start")
        } else {
            (x - 6.0, "end")
        };
        let _ = write!(
            out,
            r#"<g class="cut"><line x1="{x:.1}" x2="{x:.1}" y1="{y0:.1}" y2="{:.1}" stroke="{c}"/><path d="M{:.1} {:.1}l5 -8h-10z" fill="{c}"/><text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}">{}</text><title>{} cut its log from {} to {} ({}) at {} ms</title></g>"#,
            y1 - 6.0,
            x,
            y1,
            (y0 + y1) / 2.0 + 4.0,
            esc(&label),
            esc(&cut.node),
            cut.from,
            cut.to,
            esc(&cut.reason),
            cut.at_ms
        );
    }
}

/// One lane per replica: a bar while it is in the ISR (thick while it leads), hatched while the
/// node is down or paused.
fn isr_lanes(
    out: &mut String,
    frame: &Frame,
    view: &PartitionView,
    lanes: &[(String, Option<i64>)],
    top: f64,
) {
    let time = frame.time;
    for (row, (node, id)) in lanes.iter().enumerate() {
        let y = top + row as f64 * LANE;
        let c = frame.colour_of(node);
        let _ = write!(
            out,
            r#"<text class="lane-label" x="{:.0}" y="{:.1}" text-anchor="end">{}</text><rect class="lane" x="{LEFT}" y="{:.1}" width="{:.0}" height="10"/>"#,
            LEFT - 4.0,
            y + 9.0,
            esc(node),
            y,
            WIDTH - LEFT - RIGHT
        );
        for (start, end, leads) in membership(view, *id, time.end_ms) {
            let (x0, x1) = (time.x(start), time.x(end));
            let (dy, h) = if leads { (0.0, 10.0) } else { (2.5, 5.0) };
            let what = if leads { "leader" } else { "in the ISR" };
            let _ = write!(
                out,
                r#"<rect class="isr" x="{x0:.1}" y="{:.1}" width="{:.1}" height="{h}" fill="{c}"><title>{} {what} from {start} ms to {end} ms</title></rect>"#,
                y + dy,
                (x1 - x0).max(0.8),
                esc(node)
            );
        }
        let absences = frame.model.nodes.get(node).map_or(&[][..], Vec::as_slice);
        for &(start, end, absence) in absences {
            let what = match absence {
                Absence::Down => "down",
                Absence::Paused => "paused",
            };
            let _ = write!(
                out,
                r#"<rect class="absent" x="{:.1}" y="{:.1}" width="{:.1}" height="12" fill="url(#hatch)"><title>{} {what} from {start} ms to {end} ms</title></rect>"#,
                time.x(start),
                y - 1.0,
                (time.x(end) - time.x(start)).max(1.0),
                esc(node)
            );
        }
    }
}

/// The spans a replica was in the ISR, each marked whether it also led.
fn membership(view: &PartitionView, id: Option<i64>, end_ms: u64) -> Vec<(u64, u64, bool)> {
    let Some(id) = id else {
        return Vec::new();
    };
    // Both the ISR and the leader change only at controller decisions: walk their union.
    let mut moments: Vec<u64> = view.isr.iter().map(|(t, _)| *t).collect();
    moments.extend(view.epochs.iter().map(|e| e.start_ms));
    moments.sort_unstable();
    moments.dedup();
    let mut spans: Vec<(u64, u64, bool)> = Vec::new();
    for (i, &t) in moments.iter().enumerate() {
        let next = moments.get(i + 1).copied().unwrap_or(end_ms);
        let in_isr = last_at(&view.isr, t, |c| c.0).is_some_and(|(_, isr)| isr.contains(&id));
        let leads = last_at(&view.epochs, t, |e| e.start_ms).is_some_and(|e| e.leader == id);
        if !(in_isr || leads) {
            continue;
        }
        match spans.last_mut() {
            Some(last) if last.1 == t && last.2 == leads => last.1 = next,
            _ => spans.push((t, next, leads)),
        }
    }
    spans
}

/// The last entry of a time-ordered list at or before `t`.
fn last_at<T>(list: &[T], t: u64, at: impl Fn(&T) -> u64) -> Option<&T> {
    list.iter().take_while(|x| at(x) <= t).last()
}

/// Faults as dashed grey lines through the whole timeline, labelled in up to three rows above
/// the plot (a label that fits no row is left to the line's tooltip).
fn fault_marks(out: &mut String, frame: &Frame, bottom: f64) {
    let mut row_ends = [f64::MIN; LABEL_ROWS];
    let shown = frame
        .model
        .marks
        .iter()
        .filter(|e| inside(frame.time, e.at_ms));
    for event in shown.take(MAX_MARKS) {
        let x = frame.time.x(event.at_ms);
        let label = mark_label(event);
        let _ = write!(
            out,
            r#"<line class="fault" x1="{x:.1}" x2="{x:.1}" y1="{:.0}" y2="{bottom:.0}"><title>{} — {}</title></line>"#,
            PLOT_TOP - 2.0,
            event.at_ms,
            esc(&describe(event))
        );
        let width = label.chars().count() as f64 * 6.0 + 6.0;
        // A label that would run off the right edge ends at its line instead.
        let (start, anchor) = if x + width > WIDTH {
            (x - width, "end")
        } else {
            (x, "start")
        };
        if let Some(row) = row_ends.iter().position(|&end| end < start) {
            row_ends[row] = start + width;
            let _ = write!(
                out,
                r#"<text class="fault-label" x="{x:.1}" y="{:.0}" text-anchor="{anchor}">{}</text>"#,
                8.0 + ROW * (row as f64 + 1.0) - 3.0,
                esc(&label)
            );
        }
    }
}

fn inside(time: TimeAxis, at_ms: u64) -> bool {
    (time.start_ms..=time.end_ms).contains(&at_ms)
}

/// A close-up of a partition that lost acknowledged writes or broke a check: the time from just
/// before the first fault (or lost write) to just after the last, and, when writes were lost,
/// only the offsets up to a little above them, where the truncation and the loss are seen.
/// `None` when it would show no more than the whole timeline.
pub fn close_up(model: &Model, view: &PartitionView, violated: bool) -> Option<(TimeAxis, i64)> {
    if view.lost.is_empty() && !violated {
        return None;
    }
    let times = model.marks.iter().map(|e| e.at_ms);
    let times: Vec<u64> = times.chain(view.lost.iter().map(|l| l.0)).collect();
    let (first, last) = (*times.iter().min()?, *times.iter().max()?);
    let pad = ((last - first) / 20).max(200);
    let time = TimeAxis {
        start_ms: first.saturating_sub(pad),
        end_ms: last.saturating_add(pad).min(model.end_ms),
    };
    let whole = top_offset(view);
    let max_offset = match view.lost.iter().map(|l| l.1).max() {
        Some(highest) => (highest + 1 + (highest + 1) * 3 / 10 + 3).min(whole),
        None => whole,
    };
    let narrower = time.end_ms - time.start_ms < model.end_ms * 4 / 5;
    (narrower || max_offset < whole * 4 / 5).then_some((time, max_offset))
}

/// A fault's short name: what, and to whom.
pub fn mark_label(event: &TraceEvent) -> String {
    let d = &event.detail;
    let target = match (d["node"].as_str(), d["from"].as_str(), d["to"].as_str()) {
        (Some(node), _, _) => format!(" {node}"),
        (None, Some(from), Some(to)) => format!(" {from}→{to}"),
        _ if event.node != "world" => format!(" {}", event.node),
        _ => String::new(),
    };
    format!("{}{target}", event.kind)
}

fn violation_marks(out: &mut String, time: TimeAxis, violations: &[&Violation], bottom: f64) {
    let mut times: Vec<(u64, &str)> = violations
        .iter()
        .map(|v| (v.at_ms, v.check.as_str()))
        .collect();
    times.retain(|(t, _)| inside(time, *t));
    times.sort_unstable();
    times.dedup();
    for (at_ms, check) in times.into_iter().take(MAX_VIOLATION_MARKS) {
        let x = time.x(at_ms);
        let _ = write!(
            out,
            r#"<g class="violation-mark"><line x1="{x:.1}" x2="{x:.1}" y1="{PLOT_TOP}" y2="{bottom:.0}"/><text x="{:.1}" y="{:.0}" text-anchor="end">{}</text><title>{} at {} ms</title></g>"#,
            x - 3.0,
            PLOT_TOP + PLOT_HEIGHT - 6.0,
            esc(check),
            esc(check),
            at_ms
        );
    }
}
