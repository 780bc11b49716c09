//! The script's admin steps (`create-topic`, `delete-topic`, `create-partitions`, `reassign`,
//! `elect-leaders`, `controlled-shutdown`), and the topics that steps and clients make known.

use super::*;

/// BASE and one step at 1s.
fn step(keys: &str) -> String {
    with(&format!("[[fault]]\nat = \"1s\"\n{keys}"))
}

fn parsed(text: &str) -> Scenario {
    parse_str("t.toml", text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The brokers do not create a topic on first use.
fn no_auto_create(text: &str) -> String {
    text.replace(
        "controllers = 1\n",
        "controllers = 1\nconfig = { \"auto.create.topics.enable\" = false }\n",
    )
}

#[test]
fn admin_steps_read_into_the_model() {
    let s = parsed(&with(
        r#"
[[fault]]
at = "1s"
action = "create-topic"
topic = "events"
partitions = 4
replication-factor = 2
config = { "cleanup.policy" = "compact", min.insync.replicas = 2 }

[[fault]]
at = "2s"
action = "create-topic"
topic = "placed"
assignment = [[1, 2], [2, 3], [3, 1]]

[[fault]]
at = "3s"
action = "create-partitions"
topic = "events"
partitions = 6

[[fault]]
when = "leader(events-5) != -1"
action = "reassign"
partition = "events-5"
replicas = [3, 1]

[[fault]]
at = "5s"
action = "elect-leaders"
partition = "placed-2"
election = "preferred"

[[fault]]
at = "6s"
action = "elect-leaders"
election = "unclean"

[[fault]]
at = "7s"
action = "controlled-shutdown"
target = "leader(events-0)"
for = "5s"

[[fault]]
at = "8s"
action = "delete-topic"
topic = "placed"
"#,
    ));
    let f = &s.faults;
    let actions: Vec<Action> = f.iter().map(|f| f.action).collect();
    assert_eq!(
        actions,
        vec![
            Action::CreateTopic,
            Action::CreateTopic,
            Action::CreatePartitions,
            Action::Reassign,
            Action::ElectLeaders,
            Action::ElectLeaders,
            Action::ControlledShutdown,
            Action::DeleteTopic,
        ]
    );
    assert_eq!(
        (
            f[0].topic.as_deref(),
            f[0].partitions,
            f[0].replication_factor
        ),
        (Some("events"), Some(4), Some(2))
    );
    assert_eq!(
        f[0].config["cleanup.policy"],
        ConfigValue::Str("compact".into())
    );
    assert_eq!(f[0].config["min.insync.replicas"], ConfigValue::Int(2));
    assert_eq!(f[0].assignment, None);
    assert_eq!(
        (
            f[1].partitions,
            f[1].replication_factor,
            f[1].assignment.clone()
        ),
        (None, None, Some(vec![vec![1, 2], vec![2, 3], vec![3, 1]]))
    );
    assert!(f[1].config.is_empty());
    assert_eq!(
        (f[2].topic.as_deref(), f[2].partitions),
        (Some("events"), Some(6))
    );
    let Trigger::When(c) = &f[3].trigger else {
        panic!("{:?}", f[3].trigger)
    };
    assert_eq!(c.figure, Figure::Leader(tp("events", 5)));
    assert_eq!(
        (f[3].partition.clone(), f[3].replicas.clone()),
        (Some(tp("events", 5)), vec![3, 1])
    );
    assert_eq!(
        (f[4].partition.clone(), f[4].election),
        (Some(tp("placed", 2)), Some(Election::Preferred))
    );
    assert_eq!(
        (f[5].partition.clone(), f[5].election),
        (None, Some(Election::Unclean))
    );
    assert_eq!(
        (f[6].target.clone(), f[6].for_ms),
        (Some(Target::Leader(tp("events", 0))), Some(5_000))
    );
    assert_eq!(f[7].topic.as_deref(), Some("placed"));
    for action in &actions {
        assert_eq!(Action::from_name(action.name()), Some(*action));
    }
    assert_eq!(Election::Unclean.name(), "unclean");
}

#[test]
fn create_topic_with_more_replicas_than_brokers_is_accepted() {
    // Kafka answers INVALID_REPLICATION_FACTOR at run time; the scenario may want to show it.
    let s = parsed(&step(
        "action = \"create-topic\"\ntopic = \"wide\"\nreplication-factor = 5\n",
    ));
    assert_eq!(s.faults[0].replication_factor, Some(5));
    // A [[topic]] with as many is refused: the cluster must start.
    let text = with("[[topic]]\nname = \"wide\"\nreplication-factor = 5\n");
    refused(
        &text,
        "replication-factor = 5",
        &["the cluster has 3 brokers"],
    );
}

#[test]
fn create_topic_refusals() {
    let create = |keys: &str| step(&format!("action = \"create-topic\"\n{keys}"));
    refused(
        &create("partitions = 2\n"),
        "[[fault]]",
        &["[[fault]] #1 (create-topic) is missing the required key `topic`"],
    );
    refused(
        &create("topic = \"bad/name\"\n"),
        "bad/name",
        &[
            "`topic` in [[fault]] #1 (create-topic)",
            "Kafka allows only",
        ],
    );
    refused(
        &create("topic = \"__consumer_offsets\"\n"),
        "__consumer",
        &["internal topics"],
    );
    refused(
        &create("topic = \"t\"\npartitions = 0\n"),
        "partitions = 0",
        &["`partitions` in [[fault]] #1 (create-topic) must be between 1 and 10000, found 0"],
    );
    refused(
        &create("topic = \"t\"\nreplication-factor = 0\n"),
        "replication-factor = 0",
        &["must be between 1 and 250, found 0"],
    );
    refused(
        &create("topic = \"t\"\nreplication_factor = 2\n"),
        "replication_factor",
        &[
            "unknown key \"replication_factor\"",
            "did you mean \"replication-factor\"?",
            "allowed: at, when, after, action, topic, partitions, replication-factor, assignment, config",
        ],
    );
    refused(
        &create("topic = \"t\"\nreplicas = [1]\n"),
        "replicas",
        &["key \"replicas\" does not apply to action \"create-topic\""],
    );
    refused(
        &create("topic = \"t\"\ntarget = \"broker-1\"\n"),
        "target",
        &["key \"target\" does not apply to action \"create-topic\""],
    );
}

#[test]
fn create_topic_assignment_refusals() {
    let create = |keys: &str| step(&format!("action = \"create-topic\"\ntopic = \"t\"\n{keys}"));
    refused(
        &create("partitions = 2\nassignment = [[1]]\n"),
        "assignment",
        &["must have one list per partition: 2, found 1"],
    );
    refused(
        &create("replication-factor = 2\nassignment = [[1]]\n"),
        "assignment",
        &["partition 0 of `assignment`", "must list 2 replicas"],
    );
    refused(
        &create("assignment = [[1, 2], [3]]\n"),
        "assignment",
        &["partition 1 of `assignment`", "must list 2 replicas"],
    );
    refused(
        &create("assignment = [[1, 4]]\n"),
        "assignment",
        &["between 1 and 3, found 4"],
    );
    refused(
        &create("assignment = [[2, 2]]\n"),
        "assignment",
        &["lists broker 2 twice"],
    );
    refused(
        &create("assignment = []\n"),
        "assignment",
        &["at least one partition"],
    );
    refused(
        &create("assignment = [[]]\n"),
        "assignment",
        &["partition 0 of `assignment`", "at least one broker"],
    );
    refused(
        &create("assignment = [1, 2]\n"),
        "assignment",
        &["must be an array, found the integer 1"],
    );
    // Counts that agree with the assignment are fine.
    let s = parsed(&create(
        "partitions = 2\nreplication-factor = 1\nassignment = [[3], [1]]\n",
    ));
    assert_eq!(s.faults[0].assignment, Some(vec![vec![3], vec![1]]));
}

#[test]
fn create_topic_config_refusals() {
    let create = |config: &str| {
        step(&format!(
            "action = \"create-topic\"\ntopic = \"t\"\nconfig = {config}\n"
        ))
    };
    refused(
        &create("{ \"retention.mss\" = 1 }"),
        "config",
        &[
            "unknown topic config \"retention.mss\"",
            "the config of [[fault]] #1 (create-topic)",
        ],
    );
    refused(
        &create("{ \"min.insync.replicas\" = 0 }"),
        "config",
        &["must be at least 1, found 0"],
    );
    refused(
        &create("{ \"acks\" = \"all\" }"),
        "config",
        &["unknown topic config \"acks\""],
    );
    refused(&create("5"), "config", &["must be a table"]);
}

#[test]
fn delete_topic_and_create_partitions_refusals() {
    refused(
        &step("action = \"delete-topic\"\n"),
        "[[fault]]",
        &["(delete-topic) is missing the required key `topic`"],
    );
    refused(
        &step("action = \"delete-topic\"\ntopic = \"nope\"\n"),
        "nope",
        &["unknown topic \"nope\"", "declared: my-orders"],
    );
    refused(
        &step("action = \"delete-topic\"\ntopic = \"my-orders\"\npartitions = 7\n"),
        "partitions = 7",
        &["key \"partitions\" does not apply to action \"delete-topic\""],
    );
    let grow = |keys: &str| step(&format!("action = \"create-partitions\"\n{keys}"));
    refused(
        &grow("topic = \"my-orders\"\n"),
        "[[fault]]",
        &["(create-partitions) is missing the required key `partitions`"],
    );
    refused(
        &grow("partitions = 3\n"),
        "[[fault]]",
        &["(create-partitions) is missing the required key `topic`"],
    );
    refused(
        &grow("topic = \"my-orders\"\npartitions = 0\n"),
        "partitions = 0",
        &["must be between 1 and 10000, found 0"],
    );
    refused(
        &grow("topic = \"orders\"\npartitions = 3\n"),
        "\"orders\"",
        &["unknown topic \"orders\""],
    );
    refused(
        &grow("topic = \"my-orders\"\npartitions = 3\nconfig = {}\n"),
        "config",
        &["does not apply to action \"create-partitions\""],
    );
    // Not growing the topic is Kafka's INVALID_PARTITIONS, for the run to show.
    let s = parsed(&grow("topic = \"my-orders\"\npartitions = 1\n"));
    assert_eq!(s.faults[0].partitions, Some(1));
}

#[test]
fn reassign_refusals() {
    let reassign = |keys: &str| step(&format!("action = \"reassign\"\n{keys}"));
    refused(
        &reassign("partition = \"my-orders-0\"\n"),
        "[[fault]]",
        &["(reassign) is missing the required key `replicas`"],
    );
    refused(
        &reassign("replicas = [1]\n"),
        "[[fault]]",
        &["(reassign) is missing the required key `partition`"],
    );
    refused(
        &reassign("partition = \"my-orders-2\"\nreplicas = [1]\n"),
        "my-orders-2",
        &[
            "`partition` in [[fault]] #1 (reassign)",
            "unknown partition \"my-orders-2\": topic my-orders has 2 partitions",
        ],
    );
    refused(
        &reassign("partition = \"orders\"\nreplicas = [1]\n"),
        "\"orders\"",
        &["expected TOPIC-PARTITION"],
    );
    refused(
        &reassign("partition = \"my-orders-0\"\nreplicas = []\n"),
        "replicas",
        &["`replicas` in [[fault]] #1 (reassign) must list at least one broker"],
    );
    refused(
        &reassign("partition = \"my-orders-0\"\nreplicas = [1, 3, 1]\n"),
        "replicas",
        &["lists broker 1 twice"],
    );
    refused(
        &reassign("partition = \"my-orders-0\"\nreplicas = [4]\n"),
        "replicas",
        &["each broker of `replicas`", "between 1 and 3, found 4"],
    );
    refused(
        &reassign("partition = \"my-orders-0\"\nreplicas = [0]\n"),
        "replicas",
        &["between 1 and 3, found 0"],
    );
    refused(
        &reassign("partition = \"my-orders-0\"\nreplicas = 1\n"),
        "replicas",
        &["must be an array"],
    );
    refused(
        &reassign("partition = \"my-orders-0\"\nreplicas = [1]\nfor = \"1s\"\n"),
        "for =",
        &["key \"for\" does not apply to action \"reassign\""],
    );
}

#[test]
fn elect_leaders_refusals() {
    let elect = |keys: &str| step(&format!("action = \"elect-leaders\"\n{keys}"));
    refused(
        &elect("partition = \"my-orders-0\"\n"),
        "[[fault]]",
        &["(elect-leaders) is missing the required key `election`"],
    );
    refused(
        &elect("election = \"fastest\"\n"),
        "fastest",
        &["`election` in [[fault]] #1 (elect-leaders) must be \"preferred\" or \"unclean\", found \"fastest\""],
    );
    refused(
        &elect("election = true\n"),
        "election",
        &["must be a string, found the boolean true"],
    );
    refused(
        &elect("election = \"unclean\"\npartition = \"nope-0\"\n"),
        "nope-0",
        &["unknown topic \"nope\""],
    );
    refused(
        &elect("election = \"unclean\"\ntarget = \"broker-1\"\n"),
        "target",
        &["does not apply to action \"elect-leaders\""],
    );
}

#[test]
fn controlled_shutdown_refusals() {
    let shutdown = |keys: &str| step(&format!("action = \"controlled-shutdown\"\n{keys}"));
    refused(
        &shutdown(""),
        "[[fault]]",
        &["(controlled-shutdown) is missing the required key `target`"],
    );
    for target in ["controller-1", "controller-leader", "controller-*", "p1"] {
        refused(
            &shutdown(&format!("target = \"{target}\"\n")),
            "target",
            &[
                "only a broker shuts down in a controlled way",
                &format!("found \"{target}\""),
            ],
        );
    }
    refused(
        &shutdown("target = \"broker-4\"\n"),
        "target",
        &["unknown target \"broker-4\""],
    );
    refused(
        &shutdown("target = \"broker-1\"\nfile = \"x\"\n"),
        "file",
        &["does not apply to action \"controlled-shutdown\""],
    );
    for target in [
        "broker-2",
        "broker-*",
        "follower(my-orders-1)",
        "coordinator(g1)",
    ] {
        parsed(&shutdown(&format!("target = \"{target}\"\n")));
    }
}

#[test]
fn a_created_topic_is_known_to_targets_figures_and_clients() {
    let text = no_auto_create(&with(
        r#"
[[client]]
type = "consumer"
id = "c2"
topics = ["events"]

[[fault]]
when = "hw(events-2, broker-1) >= 1"
action = "kill"
target = "follower(events-2)"

[[fault]]
at = "1s"
action = "create-topic"
topic = "events"
partitions = 3
replication-factor = 2
"#,
    ));
    let s = parsed(&text);
    assert_eq!(s.clients[2].topics, vec!["events".to_string()]);
    assert_eq!(s.faults[0].target, Some(Target::Follower(tp("events", 2))));
    // The bounds come from the step.
    let text = text.replace("follower(events-2)", "follower(events-3)");
    refused(
        &text,
        "follower(events-3)",
        &["unknown partition \"events-3\": topic events has 3 partitions"],
    );
    let text = text
        .replace("follower(events-3)", "follower(events-0)")
        .replace("replication-factor = 2", "replication-factor = 1");
    refused(
        &text,
        "follower(events-0)",
        &["topic events has replication-factor 1, so no followers"],
    );
    // Unknown topics are listed by where they come from.
    let text = with(
        "[[fault]]\nat = \"1s\"\naction = \"create-topic\"\ntopic = \"events\"\n\n\
         [[fault]]\nat = \"2s\"\naction = \"kill\"\ntarget = \"leader(evnts-0)\"\n",
    );
    refused(
        &text,
        "evnts",
        &["unknown topic \"evnts\" (declared: my-orders; created by a step: events)"],
    );
}

#[test]
fn steps_set_the_bounds_of_a_topic() {
    // No `partitions`: the broker decides at run time, so any partition is accepted.
    let s = parsed(&with(
        "[[fault]]\nat = \"1s\"\naction = \"create-topic\"\ntopic = \"e\"\n\n\
         [[fault]]\nat = \"2s\"\naction = \"crash\"\ntarget = \"leader(e-99)\"\n",
    ));
    assert_eq!(s.faults[1].target, Some(Target::Leader(tp("e", 99))));
    // An assignment gives the count.
    let text = with(
        "[[fault]]\nat = \"1s\"\naction = \"create-topic\"\ntopic = \"e\"\nassignment = [[1], [2]]\n\n\
         [[fault]]\nat = \"2s\"\naction = \"crash\"\ntarget = \"leader(e-2)\"\n",
    );
    refused(&text, "leader(e-2)", &["topic e has 2 partitions"]);
    // create-partitions grows a declared topic; reassign adds replicas.
    let text = with(
        "[[topic]]\nname = \"solo\"\nreplication-factor = 1\n\n\
         [[fault]]\nat = \"1s\"\naction = \"create-partitions\"\ntopic = \"solo\"\npartitions = 3\n\n\
         [[fault]]\nat = \"2s\"\naction = \"kill\"\ntarget = \"follower(solo-2)\"\n",
    );
    refused(&text, "follower(solo-2)", &["has replication-factor 1"]);
    let text = text.replace(
        "[[fault]]\nat = \"2s\"",
        "[[fault]]\nat = \"1s\"\naction = \"reassign\"\npartition = \"solo-2\"\nreplicas = [1, 2]\n\n\
         [[fault]]\nat = \"2s\"",
    );
    let s = parsed(&text);
    assert_eq!(s.faults[2].target, Some(Target::Follower(tp("solo", 2))));
    assert_eq!(s.faults[1].partition, Some(tp("solo", 2)));
}

#[test]
fn a_client_may_name_a_topic_the_brokers_create_on_first_use() {
    let text = BASE.replace(
        "topics = [\"my-orders\"]",
        "topics = [\"my-orders\", \"auto\"]",
    );
    // Kafka's default: auto.create.topics.enable = true.
    let s = parsed(&text);
    assert_eq!(s.clients[1].topics, vec!["my-orders", "auto"]);
    // The topic is known from then on; its partitions are the broker's num.partitions.
    let s = parsed(&format!(
        "{text}\n[[fault]]\nat = \"1s\"\naction = \"crash\"\ntarget = \"leader(auto-7)\"\n"
    ));
    assert_eq!(s.faults[0].target, Some(Target::Leader(tp("auto", 7))));
    // Set explicitly to true, the same.
    parsed(&text.replace(
        "controllers = 1\n",
        "controllers = 1\nconfig = { \"auto.create.topics.enable\" = true }\n",
    ));
    // False: refused, on the line that names it.
    refused(
        &no_auto_create(&text),
        "\"auto\"",
        &[
            "`topics` in [[client]] \"c1\"",
            "unknown topic \"auto\" (declared: my-orders; auto.create.topics.enable is false",
        ],
    );
    let producer = BASE.replace("topic = \"my-orders\"\nrate", "topic = \"fresh\"\nrate");
    parsed(&producer);
    refused(
        &no_auto_create(&producer),
        "\"fresh\"",
        &["`topic` in [[client]] \"p1\"", "unknown topic \"fresh\""],
    );
    // A name the brokers could never create is refused either way.
    let bad = BASE.replace("topic = \"my-orders\"\nrate", "topic = \"a b\"\nrate");
    refused(&bad, "\"a b\"", &["Kafka allows only"]);
}
