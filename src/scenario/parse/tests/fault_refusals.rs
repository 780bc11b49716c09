//! Refusals of faults: unknown keys and actions, targets, `at` and `when`.

use super::*;

#[test]
fn unknown_key_in_a_fault() {
    let text = with(
        "[[fault]]\nat = \"1s\"\naction = \"crash\"\ntarget = \"broker-1\"\nduration = \"2s\"\n",
    );
    refused(
        &text,
        "duration = \"2s\"",
        &[
            "unknown key \"duration\" in [[fault]] #1 (crash)",
            "allowed: at, when, after, action, target, for",
        ],
    );
    let text =
        with("[[fault]]\nat = \"1s\"\naction = \"crash\"\ntarget = \"broker-1\"\nfactor = 2\n");
    refused(
        &text,
        "factor = 2",
        &["key \"factor\" does not apply to action \"crash\""],
    );
}

#[test]
fn unknown_fault_action() {
    let text = with("[[fault]]\nat = \"1s\"\naction = \"explode\"\ntarget = \"broker-1\"\n");
    refused(
        &text,
        "explode",
        &[
            "unknown action \"explode\" in [[fault]] #1",
            "actions: kill, crash",
        ],
    );
    let text = with("[[fault]]\nat = \"1s\"\naction = \"clog_link\"\n");
    refused(&text, "clog_link", &["did you mean \"clog-link\"?"]);
}

#[test]
fn unknown_target() {
    let fault = |target: &str| {
        with(&format!(
            "[[fault]]\nat = \"1s\"\naction = \"kill\"\ntarget = \"{target}\"\n"
        ))
    };
    refused(
        &fault("broker-4"),
        "broker-4",
        &["unknown target \"broker-4\"", "the cluster has 3 brokers"],
    );
    refused(
        &fault("controller-2"),
        "controller-2",
        &["unknown target \"controller-2\"", "1 controller"],
    );
    refused(
        &fault("leader(my-orders-2)"),
        "leader(",
        &["unknown partition \"my-orders-2\"", "has 2 partitions"],
    );
    refused(
        &fault("leader(orders-0)"),
        "leader(",
        &["unknown topic \"orders\"", "declared: my-orders"],
    );
    refused(
        &fault("coordinator(g9)"),
        "coordinator",
        &["unknown group \"g9\""],
    );
    refused(
        &fault("zeus"),
        "zeus",
        &["unknown target \"zeus\"", "broker-N"],
    );
    let text = with("[[fault]]\nat = \"1s\"\naction = \"wipe\"\ntarget = \"p1\"\n");
    refused(
        &text,
        "target = \"p1\"",
        &["acts on a disk", "client \"p1\" has none"],
    );
}

#[test]
fn when_that_does_not_parse() {
    let fault = |when: &str| {
        with(&format!(
            "[[fault]]\nwhen = \"{when}\"\naction = \"kill\"\ntarget = \"broker-1\"\n"
        ))
    };
    refused(
        &fault("hw(my-orders-0 >= 3"),
        "when",
        &["expected ',' or ')' at character 16", "found '>'"],
    );
    refused(
        &fault("hw(my-orders-0) => 3"),
        "when",
        &["expected a comparison", "character 17"],
    );
    refused(
        &fault("hw(my-orders-0) >= ten"),
        "when",
        &["expected a whole number at character 20"],
    );
    refused(
        &fault("hw(my-orders-0) >= 3 and more"),
        "when",
        &["expected the end of the condition at character 22"],
    );
    refused(
        &fault("lag(my-orders-0) >= 3"),
        "when",
        &["unknown figure \"lag\" at character 1"],
    );
    refused(
        &fault("hw(my-orders-0, broker-7) >= 3"),
        "when",
        &["unknown target \"broker-7\"", "character 17"],
    );
    refused(
        &fault("acked(c1) >= 3"),
        "when",
        &["client \"c1\" writes nothing"],
    );
    refused(
        &fault("epoch(my-orders-0, broker-1) >= 3"),
        "when",
        &["epoch takes one argument"],
    );
    refused(&fault(""), "when", &["expected a figure", "character 1"]);
}

#[test]
fn at_and_when_both_given() {
    let text = with("[[fault]]\nat = \"1s\"\nwhen = \"hw(my-orders-0) >= 1\"\naction = \"kill\"\ntarget = \"broker-1\"\n");
    refused(&text, "when =", &["has both `at` and `when`"]);
    let text = with("[[fault]]\naction = \"kill\"\ntarget = \"broker-1\"\n");
    refused(
        &text,
        "[[fault]]",
        &["needs `at` (a time) or `when` (a condition)"],
    );
    let text = with("[[fault]]\nat = \"61s\"\naction = \"heal\"\n");
    refused(&text, "61s", &["when the scenario has ended"]);
}
