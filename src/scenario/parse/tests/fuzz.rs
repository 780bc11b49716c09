//! Random bytes, random text and randomly edited scenarios: never a panic, always one line.

use super::*;
use proptest::prelude::*;

/// Bits of scenario syntax that random edits splice in.
const SPLICES: &[&str] = &[
    "\"",
    "[",
    "]",
    "[[",
    "]]",
    "=",
    "\n",
    "-",
    "0",
    "..",
    "/s",
    "broker-9",
    "leader(",
    ")",
    "#",
    "{",
    "}",
    ",",
    "1e400",
    "-1",
    "9999999999999999999",
    "\"\"",
    "[[fault]]\n",
    "when = \"hw(",
    ">=",
    "µ",
    "é",
    "\\u0000",
    "'",
    "a.b.c = 1\n",
    "1979-05-27",
    "inf",
    "nan",
    "[cluster.config]\n",
    "at = \"1s\"\n",
    "action = \"kill\"\n",
    "target = \"p1\"\n",
    "action = \"create-topic\"\n",
    "action = \"reassign\"\n",
    "topic = \"t\"\n",
    "partitions = 3\n",
    "assignment = [[1], []]\n",
    "replicas = [1, 1]\n",
    "partition = \"orders-0\"\n",
    "[[fault]]\nat = \"1s\"\naction = \"create-topic\"\ntopic = \"t\"\n",
];

fn mutate(mut text: String, edits: &[(usize, u8, usize)]) -> String {
    for &(at, op, pick) in edits {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let splice = SPLICES[pick % SPLICES.len()];
        match op % 4 {
            0 => {
                let end = text[at..]
                    .char_indices()
                    .nth(pick % 8)
                    .map_or(text.len(), |(i, _)| at + i);
                text.replace_range(at..end, "");
            }
            1 => text.insert_str(at, splice),
            2 => {
                let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                text.replace_range(at..end, splice);
            }
            _ => {
                let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
                let line = text[line_start..line_end].to_string();
                text.insert_str(line_end, &line);
            }
        }
    }
    text
}

fn never_panics(text: &str) -> Result<(), TestCaseError> {
    if let Err(e) = parse_str("fuzz.toml", text) {
        prop_assert!(!e.to_string().contains('\n'), "two lines: {}", e);
    }
    Ok(())
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        never_panics(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,300}") {
        never_panics(&text)?;
    }

    #[test]
    fn mutated_scenarios_never_panic(
        which in 0..2usize,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<usize>()), 1..6),
    ) {
        let base = [EXAMPLE, BASE][which].to_string();
        never_panics(&mutate(base, &edits))?;
    }
}
