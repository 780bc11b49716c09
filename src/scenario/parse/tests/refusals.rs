//! Refusals of the document, its tables, values, Kafka configs, topics and clients: each on the
//! right line, with the right words.

use super::*;

#[test]
fn unknown_top_level_key() {
    let text = with("colour = \"blue\"");
    let text = text.replace(
        "duration = \"60s\"\n",
        "duration = \"60s\"\ncolour = \"blue\"\n",
    );
    refused(
        &text,
        "colour",
        &[
            "unknown key \"colour\" at the top level",
            "allowed: name, summary",
        ],
    );
    refused(
        "name = \"x\"\nduraton = \"1s\"\n",
        "duraton",
        &["did you mean \"duration\"?"],
    );
}

#[test]
fn unknown_key_in_cluster() {
    let text = BASE.replace("brokers = 3", "brokers = 3\nbrokerz = 4");
    refused(
        &text,
        "brokerz",
        &[
            "unknown key \"brokerz\" in [cluster]",
            "allowed: brokers, controllers, config",
        ],
    );
}

#[test]
fn missing_required_keys() {
    let e = parse_str("bad.toml", "name = \"x\"\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad.toml: missing the required top-level key `duration`"
    );
    let text = with("[[fault]]\nat = \"1s\"\naction = \"crash\"\n");
    refused(
        &text,
        "[[fault]]",
        &["[[fault]] #1 (crash) is missing the required key `target`"],
    );
}

#[test]
fn bad_duration() {
    let text = BASE.replace("duration = \"60s\"", "duration = \"60 fortnights\"");
    refused(
        &text,
        "fortnights",
        &["`duration`", "unknown unit \"fortnights\""],
    );
    let text = BASE.replace("duration = \"60s\"", "duration = 60");
    refused(
        &text,
        "duration = 60",
        &["`duration` needs a unit", "\"60s\""],
    );
    let text = with("[disk]\nlatency = \"5ms..1ms\"\n");
    refused(&text, "5ms..1ms", &["`latency` in [disk]", "downwards"]);
}

#[test]
fn producer_without_topic() {
    let text = BASE.replace("topic = \"my-orders\"\n", "");
    refused(&text, "[[client]]", &["producer \"p1\" needs a `topic`"]);
    // An unknown topic is one the brokers may not create on first use (see `admin` for the rest).
    let text = BASE
        .replace("topic = \"my-orders\"\nrate", "topic = \"nope\"\nrate")
        .replace(
            "controllers = 1\n",
            "controllers = 1\nconfig = { \"auto.create.topics.enable\" = false }\n",
        );
    refused(&text, "\"nope\"", &["unknown topic \"nope\""]);
    let text = BASE.replace("rate = \"100/s\"\n", "");
    refused(&text, "[[client]]", &["needs a `rate`", "`count`"]);
}

#[test]
fn negative_rate() {
    let text = BASE.replace("\"100/s\"", "\"-100/s\"");
    refused(
        &text,
        "-100/s",
        &["`rate` in [[client]] \"p1\"", "must be positive"],
    );
    let text = BASE.replace("\"100/s\"", "100");
    refused(&text, "rate = 100", &["needs a unit", "200/s"]);
    let text = with("[network]\nloss = 1.5\n");
    refused(&text, "loss", &["`loss` in [network] must be in [0, 1)"]);
}

#[test]
fn malformed_toml() {
    let text = BASE.replace("brokers = 3", "brokers = = 3");
    let e = refused(&text, "brokers", &["invalid TOML", "column"]);
    assert!(!e.message.contains('\n'));
    refused(
        "name = \"x\"\nname = \"y\"\n",
        "name = \"y\"",
        &["invalid TOML", "duplicate key"],
    );
    refused("name = \"x\"\n[cluster\n", "[cluster", &["invalid TOML"]);
    refused(
        "name = \"x\"\nduration = 1979-05-27T07:32:00Z\n",
        "1979",
        &["the date-time"],
    );
}

#[test]
fn missing_file() {
    let path = Path::new("/nonexistent/samsa/scenario.toml");
    let e = parse_file(path).unwrap_err();
    assert_eq!(
        (e.file.as_str(), e.line),
        ("/nonexistent/samsa/scenario.toml", None)
    );
    assert!(
        e.to_string()
            .starts_with("/nonexistent/samsa/scenario.toml: cannot read"),
        "{e}"
    );
}

#[test]
fn topic_with_more_replicas_than_brokers() {
    let text = BASE.replace("brokers = 3", "brokers = 1");
    refused(
        &text,
        "replication-factor = 3",
        &["topic my-orders has replication-factor 3 but the cluster has 1 broker"],
    );
    let text = with("[[topic]]\nname = \"t\"\nreplication-factor = 2\nassignment = [[1, 1]]\n");
    refused(&text, "assignment", &["lists broker 1 twice"]);
    let text = with("[[topic]]\nname = \"t\"\nassignment = [[4]]\n");
    refused(&text, "assignment", &["between 1 and 3, found 4"]);
    let text = with("[[topic]]\nname = \"bad/name\"\n");
    refused(&text, "bad/name", &["Kafka allows only"]);
}

#[test]
fn unknown_kafka_config() {
    let text = BASE.replace(
        "brokers = 3",
        "brokers = 3\nconfig = { \"min.insync.replica\" = 2 }",
    );
    refused(
        &text,
        "min.insync.replica\"",
        &[
            "unknown broker config \"min.insync.replica\"",
            "did you mean \"min.insync.replicas\"?",
        ],
    );
    let text = with("[cluster.config]\nretention.ms = 5\n");
    let text = text.replace("[cluster]\nbrokers = 3\ncontrollers = 1\n", "");
    refused(
        &text,
        "retention.ms",
        &["is a topic config", "log.retention.ms"],
    );
    let text = BASE.replace(
        "rate = \"100/s\"",
        "rate = \"100/s\"\nconfig = { \"isolation.level\" = \"read_committed\" }",
    );
    refused(
        &text,
        "isolation.level",
        &["unknown producer config", "is a consumer config"],
    );
}

#[test]
fn config_value_of_the_wrong_type() {
    let text = BASE.replace(
        "brokers = 3",
        "brokers = 3\nconfig = { \"min.insync.replicas\" = \"2\" }",
    );
    refused(
        &text,
        "min.insync.replicas",
        &[
            "config \"min.insync.replicas\" in [cluster.config]",
            "expected an integer, found the string \"2\"",
        ],
    );
    let text = BASE.replace(
        "rate = \"100/s\"",
        "rate = \"100/s\"\nconfig = { acks = \"most\" }",
    );
    refused(
        &text,
        "acks",
        &["must be one of \"all\", \"-1\", \"0\", \"1\""],
    );
    let text = BASE.replace(
        "rate = \"100/s\"",
        "rate = \"100/s\"\nconfig = { acks = -1, \"enable.idempotence\" = 1 }",
    );
    refused(
        &text,
        "acks",
        &[
            "\"enable.idempotence\"",
            "expected true or false, found the integer 1",
        ],
    );
    let text = BASE.replace(
        "brokers = 3",
        "brokers = 3\nconfig = { \"min.insync.replicas\" = 0 }",
    );
    refused(
        &text,
        "min.insync.replicas",
        &["must be at least 1, found 0"],
    );
}

#[test]
fn expect_with_an_unknown_check() {
    let text = with("[expect]\nviolations = [\"lost-write\", \"lost-writes\"]\n");
    refused(
        &text,
        "lost-writes",
        &[
            "unknown check \"lost-writes\"",
            "checks: lost-write, duplicate",
        ],
    );
    let text = with("[expect]\nviolations = [\"duplicate\"]\nallow = [\"duplicate\"]\n");
    refused(&text, "allow", &["in both `violations` and `allow`"]);
}

#[test]
fn clients_are_checked() {
    let text =
        with("[[client]]\ntype = \"consumer\"\nid = \"p1\" # again\ntopics = [\"my-orders\"]\n");
    refused(&text, "# again", &["client id \"p1\" is used twice"]);
    let text = with(
        "[[client]]\ntype = \"consumer\"\nid = \"c2\"\ntopics = [\"my-orders\"]\nrate = \"1/s\"\n",
    );
    refused(
        &text,
        "rate = \"1/s\"",
        &["key \"rate\" does not apply to a consumer client"],
    );
    let text = with(
        "[[client]]\ntype = \"consumer\"\nid = \"c2\"\ntopics = [\"my-orders\"]\nmembers = 2\n",
    );
    refused(&text, "members", &["needs a `group`"]);
    let text = with("[[client]]\ntype = \"poller\"\nid = \"c2\"\n");
    refused(&text, "poller", &["unknown client type \"poller\""]);
    let text =
        with("[[client]]\ntype = \"consumer\"\nid = \"broker-1\"\ntopics = [\"my-orders\"]\n");
    refused(&text, "broker-1", &["would read as a node target"]);
}

#[test]
fn unknown_keys_in_other_tables() {
    refused(
        &with("[expect]\nviolation = []\n"),
        "violation",
        &["in [expect]", "did you mean \"violations\"?"],
    );
    refused(
        &with("[protocol]\ntruncate = \"x\"\n"),
        "truncate",
        &["in [protocol]"],
    );
    refused(
        &BASE.replace("partitions = 2", "partitions = 2\nretention = 1"),
        "retention",
        &["in [[topic]] \"my-orders\""],
    );
    refused(
        &BASE.replace("name = \"my-orders\"", "name = \"my-orders\"\n[topic.x]"),
        "[topic.x]",
        &["unknown key \"x\" in [[topic]] \"my-orders\""],
    );
    refused(
        &with("[topic] # single\nname = \"x\"\n"),
        "# single",
        &["invalid TOML"],
    );
    refused(
        "name = \"x\"\nduration = \"1s\"\n[topic]\nname = \"t\"\n",
        "[topic]",
        &["write [[topic]]"],
    );
}

#[test]
fn not_utf8_is_an_error_with_a_line() {
    let dir = std::env::temp_dir().join(format!("samsa-parse-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latin1.toml");
    std::fs::write(&path, b"name = \"x\"\nsummary = \"caf\xe9\"\n").unwrap();
    let e = parse_file(&path).unwrap_err();
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("UTF-8"));
    std::fs::remove_dir_all(&dir).unwrap();
}
