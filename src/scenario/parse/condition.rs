//! `when` conditions: `FIGURE(args) OP NUMBER`, e.g. `hw(orders-0, broker-2) >= 10`.

use super::table::{plural, q};
use super::targets::Names;
use crate::scenario::model::{Cmp, Condition, Figure};

/// A cursor over a `when` condition, for messages that name the character where it went wrong.
struct Cursor<'s> {
    text: &'s str,
    at: usize,
}

impl<'s> Cursor<'s> {
    fn skip_space(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.text[self.at..].starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn word(&mut self, allowed: impl Fn(char) -> bool) -> (&'s str, usize) {
        self.skip_space();
        let start = self.at;
        let rest = &self.text[start..];
        let len = rest.find(|c: char| !allowed(c)).unwrap_or(rest.len());
        self.at += len;
        (&rest[..len], self.column_of(start))
    }

    /// 1-based position, in characters.
    fn column_of(&self, byte: usize) -> usize {
        self.text[..byte].chars().count() + 1
    }

    fn expected<T>(&mut self, what: &str) -> Result<T, String> {
        self.skip_space();
        let found = match self.text[self.at..].chars().next() {
            Some(c) => format!("{c:?}"),
            None => "the end".into(),
        };
        Err(format!(
            "expected {what} at character {} of {}, found {found}",
            self.column_of(self.at),
            q(self.text)
        ))
    }
}

const FIGURES: &str =
    "acked(CLIENT), hw(TOPIC-P[, broker-N]), leo(TOPIC-P[, broker-N]), epoch(TOPIC-P), \
                       isr-size(TOPIC-P), leader(TOPIC-P), committed(GROUP, TOPIC-P)";

/// `FIGURE(args) OP NUMBER`, e.g. `hw(orders-0, broker-2) >= 10`.
pub(super) fn parse_condition(text: &str, names: &Names) -> Result<Condition, String> {
    let mut c = Cursor { text, at: 0 };
    let figure = figure_name(&mut c)?;
    let args = arguments(&mut c)?;
    let cmp = comparison(&mut c)?;
    let value = whole_number(&mut c)?;
    c.skip_space();
    if c.at < text.len() {
        return c.expected("the end of the condition");
    }
    let figure = figure_of(figure, &args, text, names)?;
    Ok(Condition {
        figure,
        cmp,
        value,
        text: text.trim().to_string(),
    })
}

fn figure_name<'s>(c: &mut Cursor<'s>) -> Result<&'s str, String> {
    let (figure, figure_col) = c.word(|ch| ch.is_ascii_alphanumeric() || ch == '-');
    if figure.is_empty() {
        return c.expected(&format!("a figure ({FIGURES})"));
    }
    if !matches!(
        figure,
        "acked" | "hw" | "leo" | "epoch" | "isr-size" | "leader" | "committed"
    ) {
        return Err(format!(
            "unknown figure {} at character {figure_col} of {} (figures: {FIGURES})",
            q(figure),
            q(c.text)
        ));
    }
    Ok(figure)
}

/// `(ARG, …)`: each argument with its column, for messages.
fn arguments<'s>(c: &mut Cursor<'s>) -> Result<Vec<(&'s str, usize)>, String> {
    if !c.eat("(") {
        return c.expected("'('");
    }
    let mut args = Vec::new();
    loop {
        let (arg, col) =
            c.word(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-' | '*'));
        if arg.is_empty() {
            return c.expected("an argument");
        }
        args.push((arg, col));
        if c.eat(")") {
            break;
        }
        if !c.eat(",") {
            return c.expected("',' or ')'");
        }
    }
    Ok(args)
}

fn comparison(c: &mut Cursor) -> Result<Cmp, String> {
    let cmp = [
        (">=", Cmp::Ge),
        ("<=", Cmp::Le),
        ("==", Cmp::Eq),
        ("!=", Cmp::Ne),
        (">", Cmp::Gt),
        ("<", Cmp::Lt),
    ]
    .into_iter()
    .find(|(token, _)| c.eat(token))
    .map(|(_, cmp)| cmp);
    let Some(cmp) = cmp else {
        return c.expected("a comparison (>=, >, <=, <, ==, !=)");
    };
    Ok(cmp)
}

fn whole_number(c: &mut Cursor) -> Result<i64, String> {
    let (number, number_col) = c.word(|ch| ch.is_ascii_digit() || ch == '-');
    let Ok(value) = number.parse::<i64>() else {
        return if number.is_empty() {
            c.expected("a whole number")
        } else {
            Err(format!(
                "expected a whole number at character {number_col} of {}, found {}",
                q(c.text),
                q(number)
            ))
        };
    };
    Ok(value)
}

fn figure_of(
    figure: &str,
    args: &[(&str, usize)],
    text: &str,
    names: &Names,
) -> Result<Figure, String> {
    let at = |i: usize, m: String| format!("{m} (character {} of {})", args[i].1, q(text));
    let arity = |lo: usize, hi: usize, shape: &str| -> Result<(), String> {
        if (lo..=hi).contains(&args.len()) {
            Ok(())
        } else {
            Err(format!(
                "{figure} takes {shape}, found {} in {}",
                plural(args.len() as u32, "argument"),
                q(text)
            ))
        }
    };
    let tp = |i: usize| names.partition(args[i].0).map_err(|m| at(i, m));
    let replica = |i: usize| -> Result<Option<u32>, String> {
        let Some(&(arg, _)) = args.get(i) else {
            return Ok(None);
        };
        match arg.strip_prefix("broker-") {
            Some(n) => names.broker(arg, n).map(Some).map_err(|m| at(i, m)),
            None => Err(at(i, format!("expected broker-N, found {}", q(arg)))),
        }
    };
    match figure {
        "acked" => {
            arity(1, 1, "one argument, a producer's id")?;
            let id = args[0].0;
            match names.clients.iter().find(|c| c.id == id) {
                Some(c) if c.topic.is_some() => Ok(Figure::Acked(id.to_string())),
                Some(_) => Err(at(
                    0,
                    format!("client {} writes nothing to acknowledge", q(id)),
                )),
                None => Err(at(0, format!("unknown client {}", q(id)))),
            }
        }
        "hw" | "leo" => {
            arity(1, 2, "TOPIC-P and optionally broker-N")?;
            let (tp, replica) = (tp(0)?, replica(1)?);
            Ok(if figure == "hw" {
                Figure::Hw(tp, replica)
            } else {
                Figure::Leo(tp, replica)
            })
        }
        "epoch" | "isr-size" | "leader" => {
            arity(1, 1, "one argument, TOPIC-P")?;
            let tp = tp(0)?;
            Ok(match figure {
                "epoch" => Figure::Epoch(tp),
                "isr-size" => Figure::IsrSize(tp),
                _ => Figure::Leader(tp),
            })
        }
        _ => {
            arity(2, 2, "GROUP and TOPIC-P")?;
            names.group_declared(args[0].0).map_err(|m| at(0, m))?;
            Ok(Figure::Committed(args[0].0.to_string(), tp(1)?))
        }
    }
}
