//! Drawing helpers: the time axis, step lines downsampled to the pixel columns they cover, and
//! text escaping. A ten-minute run has a point per fetch; a screen has some thousand columns.

use std::fmt::Write;

use super::model::Step;

/// Width of every timeline, and the margins around its plot.
pub const WIDTH: f64 = 1200.0;
pub const LEFT: f64 = 96.0;
pub const RIGHT: f64 = 16.0;

/// Maps simulated time from `start_ms` to `end_ms` to x over the plot's width; times outside
/// are drawn at the edges.
#[derive(Clone, Copy)]
pub struct TimeAxis {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl TimeAxis {
    pub fn whole(end_ms: u64) -> TimeAxis {
        TimeAxis {
            start_ms: 0,
            end_ms,
        }
    }

    fn span_ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms).max(1)
    }

    pub fn x(&self, at_ms: u64) -> f64 {
        let span = (WIDTH - LEFT - RIGHT).max(1.0);
        let t = at_ms.clamp(self.start_ms, self.end_ms.max(self.start_ms)) - self.start_ms;
        LEFT + span * t as f64 / self.span_ms() as f64
    }

    /// Tick marks at a round step (1, 2 or 5 × 10^k ms), about ten over the axis.
    pub fn ticks(&self) -> Vec<u64> {
        let step = round_step(self.span_ms() / 10);
        let first = self.start_ms.div_ceil(step);
        (first..=self.end_ms / step).map(|i| i * step).collect()
    }

    /// The time labels under a plot whose bottom is at `y`.
    pub fn labels(&self, out: &mut String, y: f64) {
        for t in self.ticks() {
            let x = self.x(t);
            let _ = write!(
                out,
                r#"<text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                y + 13.0,
                time_label(t)
            );
        }
    }
}

/// The smallest of 1, 2, 5 × 10^k at least `rough` (and at least 1).
pub fn round_step(rough: u64) -> u64 {
    let mut unit = 1u64;
    loop {
        for m in [1, 2, 5] {
            let step = unit.saturating_mul(m);
            if step >= rough || step == u64::MAX {
                return step.max(1);
            }
        }
        unit = unit.saturating_mul(10);
    }
}

pub fn time_label(ms: u64) -> String {
    match (ms % 1000, ms % 100) {
        (0, _) => format!("{} s", ms / 1000),
        (_, 0) => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{:.3} s", ms as f64 / 1000.0),
    }
}

/// Maps an offset to y within a plot from `top` to `top + height`, 0 at the bottom.
#[derive(Clone, Copy)]
pub struct ValueAxis {
    pub top: f64,
    pub height: f64,
    pub max: i64,
}

impl ValueAxis {
    pub fn y(&self, value: i64) -> f64 {
        let frac = value.clamp(0, self.max.max(1)) as f64 / self.max.max(1) as f64;
        self.top + self.height * (1.0 - frac)
    }
}

/// A step line as an SVG path (`M`, `H`, `V`), from the first point to `end_ms`, over columns
/// `column_px` pixels wide. Within one
/// pixel column only the first, lowest, highest and last values and the deepest drop are kept,
/// in the order they happened, so a truncation survives the downsampling.
pub fn step_path(points: &[Step], time: TimeAxis, values: ValueAxis, column_px: f64) -> String {
    let column_px = column_px.max(1.0);
    let mut kept: Vec<(f64, i64)> = Vec::new();
    let mut column: Vec<i64> = Vec::new();
    let mut column_x = f64::NAN;
    for &(at_ms, value) in points {
        let x = LEFT + ((time.x(at_ms) - LEFT) / column_px).floor() * column_px;
        if x != column_x && !column.is_empty() {
            flush_column(&mut kept, column_x, &column);
            column.clear();
        }
        column_x = x;
        column.push(value);
    }
    if !column.is_empty() {
        flush_column(&mut kept, column_x, &column);
    }
    let mut path = String::new();
    let Some(&(x0, v0)) = kept.first() else {
        return path;
    };
    let _ = write!(path, "M{x0:.0} {:.1}", values.y(v0));
    let (mut x_at, mut v_at) = (x0, v0);
    for &(x, v) in &kept[1..] {
        if x != x_at {
            let _ = write!(path, "H{x:.0}");
            x_at = x;
        }
        if v != v_at {
            let _ = write!(path, "V{:.1}", values.y(v));
            v_at = v;
        }
    }
    let _ = write!(path, "H{:.0}", time.x(time.end_ms));
    path
}

fn flush_column(kept: &mut Vec<(f64, i64)>, x: f64, values: &[i64]) {
    let (mut lo, mut hi) = (0, 0);
    // The deepest drop (from `peak` down to `trough`), which min and max alone can miss: a log
    // that grows, is cut and grows past its old end within one column.
    let (mut running_max, mut peak, mut trough) = (0, 0, 0);
    for (i, v) in values.iter().enumerate() {
        if *v < values[lo] {
            lo = i;
        }
        if *v > values[hi] {
            hi = i;
        }
        if *v > values[running_max] {
            running_max = i;
        }
        if values[running_max] - v > values[peak] - values[trough] {
            (peak, trough) = (running_max, i);
        }
    }
    let mut order = [0, lo, hi, peak, trough, values.len() - 1];
    order.sort_unstable();
    for i in order {
        if kept.last() != Some(&(x, values[i])) {
            kept.push((x, values[i]));
        }
    }
}

/// Text for HTML and SVG, element content or attribute value alike.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Colours for replicas and clients, told apart in print and by most colour-blind readers
/// (Okabe and Ito's palette).
pub const PALETTE: [&str; 7] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#7F7F00",
];

pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dip_inside_one_column_survives_downsampling() {
        let time = TimeAxis::whole(1_000_000);
        let values = ValueAxis {
            top: 0.0,
            height: 100.0,
            max: 100,
        };
        // Up to 50, down to 10 (a truncation), back to 60, all within one pixel column.
        let path = step_path(&[(0, 0), (1, 50), (2, 10), (3, 60)], time, values, 1.0);
        assert!(path.contains("V90.0"), "{path}");
        assert!(path.contains("V50.0"), "{path}");
    }

    #[test]
    fn no_points_draw_nothing() {
        let time = TimeAxis::whole(0);
        let values = ValueAxis {
            top: 0.0,
            height: 10.0,
            max: 0,
        };
        assert_eq!(step_path(&[], time, values, 1.0), "");
        assert_eq!(time.ticks(), vec![0]);
    }
}
