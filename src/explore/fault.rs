//! One generated fault: when it fires, what it does, and how long until it is undone; written
//! as an ordinary `[[fault]]` table of the scenario format, and read back from one.

use std::fmt::Write;

use super::space::Kind;
use crate::scenario::{Action, FaultSpec, Target, Trigger};

/// What a generated fault does, and to what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    Crash(Target),
    Kill(Target),
    Pause(Target),
    Isolate(Target),
    /// The sides, each a list of nodes by name.
    Partition(Vec<Vec<Target>>),
    Clog {
        from: Target,
        to: Target,
    },
    /// A packet-loss rate, in percent.
    Loss(u32),
    SlowDisk {
        target: Target,
        factor: u32,
    },
    DiskFull(Target),
    Corrupt(Target),
    ClockSkew {
        target: Target,
        by_ms: i64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub at_ms: u64,
    pub what: What,
    /// Undone this long after it fired; `None` only for `corrupt`, which cannot be.
    pub for_ms: Option<u64>,
}

impl Fault {
    pub fn action(&self) -> Action {
        match self.what {
            What::Crash(_) => Action::Crash,
            What::Kill(_) => Action::Kill,
            What::Pause(_) => Action::Pause,
            What::Isolate(_) => Action::Isolate,
            What::Partition(_) => Action::Partition,
            What::Clog { .. } => Action::ClogLink,
            What::Loss(_) => Action::Loss,
            What::SlowDisk { .. } => Action::SlowDisk,
            What::DiskFull(_) => Action::DiskFull,
            What::Corrupt(_) => Action::Corrupt,
            What::ClockSkew { .. } => Action::ClockSkew,
        }
    }

    pub fn kind(&self) -> Kind {
        match self.what {
            What::Crash(_) => Kind::Crash,
            What::Kill(_) => Kind::Kill,
            What::Pause(_) => Kind::Pause,
            What::Isolate(_) | What::Partition(_) => Kind::Partition,
            What::Clog { .. } => Kind::Clog,
            What::Loss(_) => Kind::Loss,
            What::SlowDisk { .. } => Kind::SlowDisk,
            What::DiskFull(_) => Kind::DiskFull,
            What::Corrupt(_) => Kind::Corrupt,
            What::ClockSkew { .. } => Kind::ClockSkew,
        }
    }

    fn target(&self) -> Option<&Target> {
        match &self.what {
            What::Crash(t)
            | What::Kill(t)
            | What::Pause(t)
            | What::Isolate(t)
            | What::DiskFull(t)
            | What::Corrupt(t)
            | What::SlowDisk { target: t, .. }
            | What::ClockSkew { target: t, .. } => Some(t),
            What::Partition(_) | What::Clog { .. } | What::Loss(_) => None,
        }
    }

    /// One line: `crash leader(orders-0) at 12.3s for 1.5s`.
    pub fn describe(&self) -> String {
        let mut text = self.action().name().to_string();
        match &self.what {
            What::Partition(sides) => {
                let sides: Vec<String> = sides.iter().map(|s| names(s).join(" ")).collect();
                let _ = write!(text, " {}", sides.join(" | "));
            }
            What::Clog { from, to } => {
                let _ = write!(text, " {from} -> {to}");
            }
            What::Loss(pct) => {
                let _ = write!(text, " {pct}%");
            }
            _ => {}
        }
        if let Some(target) = self.target() {
            let _ = write!(text, " {target}");
        }
        match &self.what {
            What::SlowDisk { factor, .. } => {
                let _ = write!(text, " x{factor}");
            }
            What::ClockSkew { by_ms, .. } => {
                let _ = write!(text, " by {}", show_ms(*by_ms));
            }
            _ => {}
        }
        let _ = write!(text, " at {}", show_ms(self.at_ms as i64));
        if let Some(for_ms) = self.for_ms {
            let _ = write!(text, " for {}", show_ms(for_ms as i64));
        }
        text
    }

    /// The fault as a `[[fault]]` table of the scenario format.
    pub fn to_toml(&self) -> String {
        let mut t = String::from("[[fault]]\n");
        let _ = writeln!(t, "at = {}", quote(&show_ms(self.at_ms as i64)));
        let _ = writeln!(t, "action = {}", quote(self.action().name()));
        if let Some(target) = self.target() {
            let _ = writeln!(t, "target = {}", quote(&target.to_string()));
        }
        match &self.what {
            What::Partition(sides) => {
                let sides: Vec<String> = sides
                    .iter()
                    .map(|side| {
                        let names: Vec<String> = names(side).iter().map(|n| quote(n)).collect();
                        format!("[{}]", names.join(", "))
                    })
                    .collect();
                let _ = writeln!(t, "groups = [{}]", sides.join(", "));
            }
            What::Clog { from, to } => {
                let _ = writeln!(t, "from = {}", quote(&from.to_string()));
                let _ = writeln!(t, "to = {}", quote(&to.to_string()));
            }
            What::Loss(pct) => {
                let _ = writeln!(t, "rate = {}", f64::from(*pct) / 100.0);
            }
            What::SlowDisk { factor, .. } => {
                let _ = writeln!(t, "factor = {factor}");
            }
            What::ClockSkew { by_ms, .. } => {
                let _ = writeln!(t, "by = {}", quote(&show_ms(*by_ms)));
            }
            _ => {}
        }
        if let Some(for_ms) = self.for_ms {
            let _ = writeln!(t, "for = {}", quote(&show_ms(for_ms as i64)));
        }
        t
    }

    /// The generated fault a parsed `[[fault]]` is, if it is one: the inverse of `to_toml`.
    pub fn from_spec(spec: &FaultSpec) -> Option<Fault> {
        let Trigger::At(at_ms) = spec.trigger else {
            return None;
        };
        if spec.after_ms != 0 {
            return None;
        }
        let target = || spec.target.clone();
        let what = match spec.action {
            Action::Crash => What::Crash(target()?),
            Action::Kill => What::Kill(target()?),
            Action::Pause => What::Pause(target()?),
            Action::Isolate => What::Isolate(target()?),
            Action::Partition => What::Partition(spec.groups.clone()),
            Action::ClogLink => What::Clog {
                from: spec.from.clone()?,
                to: spec.to.clone()?,
            },
            Action::Loss => What::Loss((spec.rate? * 100.0).round() as u32),
            Action::SlowDisk => What::SlowDisk {
                target: target()?,
                factor: spec.factor? as u32,
            },
            Action::DiskFull => What::DiskFull(target()?),
            Action::Corrupt => What::Corrupt(target()?),
            Action::ClockSkew => What::ClockSkew {
                target: target()?,
                by_ms: spec.by_ms?,
            },
            _ => return None,
        };
        Some(Fault {
            at_ms,
            what,
            for_ms: spec.for_ms,
        })
    }
}

fn names(side: &[Target]) -> Vec<String> {
    side.iter().map(Target::to_string).collect()
}

/// A TOML basic string (targets and durations hold no quote or backslash, but a client id
/// might).
fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A duration as the scenario format writes it: `12s`, `12300ms`, `-2s`.
pub fn show_ms(ms: i64) -> String {
    if ms != 0 && ms % 1_000 == 0 {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}
