//! Runs one scenario with one seed inside madsim: builds the world (brokers and clients on nodes
//! of their own, each broker with its simulated disk), fires the fault schedule, lets the run
//! last its duration, then reads the final state off the disks and checks the history.

mod admin;
mod config;
mod controllers;
mod faults;
mod final_state;
mod recorder;
mod world;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use samsa_sim::check::{self, FinalState, Violation};
use samsa_sim::disk::{DiskConfig, SimDisk};
use samsa_sim::history::{Journal, Sink};

use crate::broker::{self, BrokerContext, PlantedBug};
use crate::client::{self, ClientContext};
use crate::metadata::BROKER_PORT;
use crate::scenario::configs::{self, Scope};
use crate::scenario::{ClientKind, Scenario};
use crate::world::clock::SIM_EPOCH_MS;
use crate::world::sim_disk::SimDiskBackend;
use crate::world::{derive_seed, Clock, Disk, SharedRecorder};
use recorder::RunRecorder;
use world::{broker_ip, client_ip, NodeState, SimNode, World};

/// Everything a run produced.
pub struct RunOutput {
    pub journal: Journal,
    pub final_state: FinalState,
    pub violations: Vec<Violation>,
    pub sim_ms: u64,
    /// Network messages madsim delivered.
    pub messages: u64,
    /// Each broker's final disk: node name → (path → bytes).
    pub disks: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

/// What survives the runtime: filled in by the simulation, read after it ends (or panics).
#[derive(Default)]
struct Slot {
    /// Where the journal's entries also go as they are recorded (`run_narrated`).
    sink: Option<Sink>,
    recorder: Option<Arc<RunRecorder>>,
    disks: BTreeMap<String, Arc<Mutex<SimDisk>>>,
    sim_ms: u64,
    messages: u64,
}

fn madsim_config(scenario: &Scenario) -> madsim::Config {
    let mut config = madsim::Config::default();
    let latency = scenario.network.latency_us;
    config.net.send_latency =
        Duration::from_micros(latency.lo)..Duration::from_micros(latency.hi.max(latency.lo + 1));
    config.net.packet_loss_rate = scenario.network.loss;
    config
}

/// Runs the scenario with `seed`. A panic inside the simulation ends the run and is reported as
/// a `panic` violation, never propagated.
pub fn run(scenario: &Scenario, seed: u64) -> RunOutput {
    run_planted(scenario, seed, None)
}

/// `run`, with every journal entry also given to `sink` as it is recorded (`samsa explain`).
/// The sink sees the run; it does not change it, nor its digest.
pub fn run_narrated(scenario: &Scenario, seed: u64, sink: Sink) -> RunOutput {
    let slot = Slot {
        sink: Some(sink),
        ..Slot::default()
    };
    run_in(scenario, seed, None, slot)
}

/// `run` with a bug planted in every broker, for the tests that prove a check finds it.
pub fn run_planted(scenario: &Scenario, seed: u64, bug: Option<PlantedBug>) -> RunOutput {
    run_in(scenario, seed, bug, Slot::default())
}

fn run_in(scenario: &Scenario, seed: u64, bug: Option<PlantedBug>, slot: Slot) -> RunOutput {
    let slot = Arc::new(Mutex::new(slot));
    let runtime = madsim::runtime::Runtime::with_seed_and_config(seed, madsim_config(scenario));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(simulate(scenario.clone(), seed, bug, slot.clone()))
    }));
    drop(runtime);
    let panic = outcome.err().map(|payload| panic_message(&*payload));
    collect(slot, panic)
}

/// Runs the scenario twice under madsim's own determinism check (which replays the first run's
/// every random draw against the second's and panics at the first difference), and returns the
/// two runs' trace digests.
pub fn check_determinism(scenario: &Scenario, seed: u64) -> Result<Vec<u64>, String> {
    // madsim's check takes a `fn`, not a closure: the scenario goes in through a static, which
    // holds nothing between calls (it is emptied before returning).
    static INPUT: Mutex<Option<Scenario>> = Mutex::new(None);
    static DIGESTS: Mutex<Vec<u64>> = Mutex::new(Vec::new());
    // One check at a time in a process: the statics above are its only way in and out.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    *INPUT.lock().expect("input lock") = Some(scenario.clone());
    DIGESTS.lock().expect("digests lock").clear();
    fn body() -> impl std::future::Future<Output = ()> {
        let scenario = INPUT
            .lock()
            .expect("input lock")
            .clone()
            .expect("input set");
        let slot = Arc::new(Mutex::new(Slot::default()));
        async move {
            let seed = madsim::runtime::Handle::current().seed();
            simulate(scenario, seed, None, slot.clone()).await;
            let digest = collect(slot, None).journal.digest();
            DIGESTS.lock().expect("digests lock").push(digest);
        }
    }
    let result = catch_unwind(|| {
        madsim::runtime::Runtime::check_determinism(seed, madsim_config(scenario), body)
    });
    *INPUT.lock().expect("input lock") = None;
    let digests = std::mem::take(&mut *DIGESTS.lock().expect("digests lock"));
    match result {
        Ok(()) => Ok(digests),
        Err(payload) => Err(panic_message(&*payload)),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

async fn simulate(scenario: Scenario, seed: u64, bug: Option<PlantedBug>, slot: Arc<Mutex<Slot>>) {
    let clock = Clock::starting_at(SIM_EPOCH_MS);
    let recorder = RunRecorder::new(clock.clone());
    {
        let mut slot = slot.lock().expect("slot lock");
        slot.recorder = Some(recorder.clone());
        if let Some(sink) = slot.sink.take() {
            recorder
                .journal
                .lock()
                .expect("journal lock")
                .set_sink(sink);
        }
    }
    let handle = madsim::runtime::Handle::current();
    let fault_rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "faults"));
    let mut world = World::new(
        handle.clone(),
        recorder.clone(),
        fault_rng,
        scenario.network.loss,
    );
    let shared: SharedRecorder = recorder.clone();
    let voters = controllers::voters(&scenario);
    start_brokers(
        &scenario, seed, bug, &clock, &shared, &voters, &mut world, &slot,
    );
    controllers::start(&scenario, seed, &clock, &shared, &voters, &mut world, &slot);
    let brokers_ready = wait_for_brokers(&scenario, &recorder);
    let ready = start_admin(
        &scenario,
        &clock,
        &shared,
        &voters,
        brokers_ready,
        &mut world,
    );
    let world = Arc::new(Mutex::new(world));
    let fired = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(faults::run_schedule(
        world.clone(),
        scenario.faults.clone(),
        clock.clone(),
        fired.clone(),
        scenario.recovery_ms.map(|recovery_ms| faults::Recovery {
            recovery_ms,
            end_ms: scenario.duration_ms,
        }),
    ));
    // Clients start once the scenario's topics exist, as a test creates its topics first.
    let end = Duration::from_millis(scenario.duration_ms);
    let mut ready = ready;
    let created = tokio::time::timeout(end, ready.wait_for(|&done| done)).await;
    if created.is_ok() {
        crate::world::Recorder::event(&*recorder, "world", "topics-created", serde_json::json!({}));
        let mut world = world.lock().expect("world lock");
        start_clients(&scenario, seed, &clock, &shared, &mut world);
    }
    let elapsed = Duration::from_millis(clock.elapsed_ms());
    tokio::time::sleep(end.saturating_sub(elapsed)).await;
    // A `when` that never held leaves it and every fault after it unfired: say so, or a run
    // that tested nothing would look like one that passed.
    let fired = fired.load(std::sync::atomic::Ordering::Relaxed);
    if fired < scenario.faults.len() {
        let lines: Vec<usize> = scenario.faults[fired..].iter().map(|f| f.line).collect();
        crate::world::Recorder::event(
            &*recorder,
            "world",
            "faults-not-fired",
            serde_json::json!({ "lines": lines }),
        );
    }
    // The journal ends here, the same whether the runtime is then dropped (`run`) or the run is
    // collected inside it (`check_determinism`).
    recorder.close();
    let mut slot = slot.lock().expect("slot lock");
    slot.sim_ms = clock.elapsed_ms();
    slot.messages = madsim::net::NetSim::current().stat().msg_count;
}

/// How long the run waits for every broker to be registered and unfenced before it creates the
/// scenario's topics anyway (a broker may be down from the start).
const BROKERS_READY_TIMEOUT_MS: u64 = 10_000;

/// Says when every broker is registered and unfenced (or the wait timed out), as a test
/// harness waits for its brokers before creating topics (Kafka's `KafkaClusterTestKit`
/// `waitForReadyBrokers`): a topic created while a broker is still fenced leaves it out of
/// the ISR, and the scenario's leaders would not be the ones its assignment names.
fn wait_for_brokers(
    scenario: &Scenario,
    recorder: &Arc<RunRecorder>,
) -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let recorder = recorder.clone();
    let brokers = scenario.cluster.brokers as usize;
    tokio::spawn(async move {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(BROKERS_READY_TIMEOUT_MS);
        loop {
            let changed = recorder.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let ready = recorder
                .figures
                .lock()
                .expect("figures lock")
                .unfenced
                .len()
                >= brokers;
            if ready || tokio::time::Instant::now() >= deadline {
                let _ = tx.send(true);
                return;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let _ = tokio::time::timeout(left, changed).await;
        }
    });
    rx
}

/// The admin client's node: once the brokers are ready, it creates the scenario's topics and
/// then says so on the returned channel.
fn start_admin(
    scenario: &Scenario,
    clock: &Clock,
    recorder: &SharedRecorder,
    voters: &admin::Voters,
    brokers_ready: tokio::sync::watch::Receiver<bool>,
    world: &mut World,
) -> tokio::sync::watch::Receiver<bool> {
    let (ready_tx, ready_rx) = tokio::sync::watch::channel(false);
    let ready_tx = Arc::new(ready_tx);
    let (steps_tx, steps_rx) = tokio::sync::mpsc::unbounded_channel();
    world.admin_steps = Some(steps_tx);
    let steps_rx = Arc::new(Mutex::new(Some(steps_rx)));
    let topics = scenario.topics.clone();
    let voters = voters.clone();
    let recorder = recorder.clone();
    let bootstrap = bootstrap_servers(scenario);
    let admin_clock = clock.for_node();
    let node_clock = admin_clock.clone();
    let node = world
        .handle
        .create_node()
        .name(admin::ADMIN_NODE)
        .ip(admin::admin_ip())
        .init(move || {
            let admin = admin::Admin {
                channel: crate::protocol::controller_channel::ControllerChannel::new(
                    &voters,
                    admin::ADMIN_NODE,
                ),
                recorder: recorder.clone(),
                bootstrap: bootstrap.clone(),
                clock: admin_clock.clone(),
            };
            let topics = topics.clone();
            let ready_tx = ready_tx.clone();
            // The admin node never restarts: its one start takes the steps.
            let steps = steps_rx.lock().expect("steps lock").take();
            let mut brokers_ready = brokers_ready.clone();
            async move {
                let _ = brokers_ready.wait_for(|&ready| ready).await;
                admin.create_scenario_topics(&topics).await;
                let _ = ready_tx.send(true);
                if let Some(steps) = steps {
                    admin.perform_steps(steps).await;
                }
            }
        })
        .build();
    world.nodes.insert(
        admin::ADMIN_NODE.to_string(),
        SimNode {
            id: node.id(),
            broker: None,
            controller: None,
            clock: node_clock,
            disk: None,
            state: NodeState::Up,
            shutdown: None,
            delays: Default::default(),
        },
    );
    ready_rx
}

#[allow(clippy::too_many_arguments)]
fn start_brokers(
    scenario: &Scenario,
    seed: u64,
    bug: Option<PlantedBug>,
    clock: &Clock,
    recorder: &SharedRecorder,
    voters: &admin::Voters,
    world: &mut World,
    slot: &Arc<Mutex<Slot>>,
) {
    let cluster = &scenario.cluster.config;
    let heartbeat_interval_ms =
        configs::get_i64(cluster, "broker.heartbeat.interval.ms", Scope::Broker).unwrap_or(2_000);
    let auto_create_topics =
        configs::get_bool(cluster, "auto.create.topics.enable", Scope::Broker).unwrap_or(true);
    let broker_config = config::broker_config(scenario, bug);
    // The configs of the scenario's topics and of those its script creates (a name created twice
    // runs with its last configs), resolved once for every broker.
    let script_topics = scenario
        .faults
        .iter()
        .filter(|f| f.action == crate::scenario::Action::CreateTopic)
        .filter_map(|f| Some((f.topic.clone()?, &f.config)));
    let topic_config: BTreeMap<_, _> = scenario
        .topics
        .iter()
        .map(|t| (t.name.clone(), &t.config))
        .chain(script_topics)
        .map(|(name, topic)| {
            let resolved = config::topic_config(&broker_config, &scenario.cluster.config, topic);
            (name, resolved)
        })
        .chain(std::iter::once((
            broker::OFFSETS_TOPIC.to_string(),
            config::offsets_topic_config(&broker_config, &scenario.cluster.config),
        )))
        .collect();
    let groups = config::group_config(scenario);
    let mut txn = config::txn_config(scenario);
    txn.coordinator.planted_no_epoch_fence = bug == Some(PlantedBug::NoEpochFence);
    let replication = config::replication_config(scenario);
    let log_manager = config::log_manager_config(
        &scenario.cluster.config,
        std::iter::once(&broker_config).chain(topic_config.values()),
    );
    for id in 1..=scenario.cluster.brokers {
        let name = format!("broker-{id}");
        let node_clock = clock.for_node();
        let shutdown = Arc::new(broker::ShutdownSignal::default());
        let delays = crate::protocol::RequestDelays::default();
        let buggify = if scenario.buggify {
            crate::world::buggify::Buggify::for_node(seed, &name, recorder.clone())
        } else {
            crate::world::buggify::Buggify::off()
        };
        let (sim_disk, disk) = node_disk(&name, scenario, seed, clock, slot, buggify.clone());
        let ctx = Arc::new(BrokerContext {
            id: id as i32,
            name: name.clone(),
            listen: SocketAddr::new(broker_ip(id), BROKER_PORT),
            config: broker_config.clone(),
            topic_config: topic_config.clone(),
            log_manager,
            replication: replication.clone(),
            disk,
            clock: node_clock.clone(),
            recorder: recorder.clone(),
            controllers: voters.clone(),
            heartbeat_interval_ms: heartbeat_interval_ms as u64,
            auto_create_topics,
            groups: groups.clone(),
            txn: txn.clone(),
            seed: derive_seed(seed, &name),
            shutdown: shutdown.clone(),
            delays: delays.clone(),
            buggify: buggify.clone(),
        });
        let node = world
            .handle
            .create_node()
            .name(&name)
            .ip(broker_ip(id))
            .init(move || broker::run(ctx.clone()))
            .build();
        world.nodes.insert(
            name,
            SimNode {
                id: node.id(),
                broker: Some(id as i32),
                controller: None,
                clock: node_clock,
                disk: Some(sim_disk),
                state: NodeState::Up,
                shutdown: Some(shutdown),
                delays,
            },
        );
    }
}

/// Every broker's listener: the clients' `bootstrap.servers`.
fn bootstrap_servers(scenario: &Scenario) -> Vec<SocketAddr> {
    (1..=scenario.cluster.brokers)
        .map(|id| SocketAddr::new(broker_ip(id), BROKER_PORT))
        .collect()
}

fn start_clients(
    scenario: &Scenario,
    seed: u64,
    clock: &Clock,
    recorder: &SharedRecorder,
    world: &mut World,
) {
    let bootstrap = bootstrap_servers(scenario);
    let mut index = 0;
    for spec in &scenario.clients {
        if spec.kind == ClientKind::Pipeline {
            // What the pipeline reads and writes, for the `eos-violation` check.
            recorder.op_val(
                &spec.id,
                samsa_sim::history::OpType::Ok,
                "pipeline",
                samsa_sim::val!({
                    "group": spec.group.as_deref(),
                    "input": samsa_sim::val::Val::array(spec.topics.iter().map(|t| t.as_str().into())),
                    "output": spec.topic.as_deref(),
                    "prefix": config::pipeline_prefix(spec),
                }),
            );
        }
        // A group consumer runs one node per member, `<id>-1` … `<id>-N`.
        let names: Vec<(String, u32)> = match (&spec.kind, &spec.group) {
            (ClientKind::Consumer | ClientKind::Pipeline, Some(_)) => (1..=spec.members)
                .map(|m| (format!("{}-{m}", spec.id), m))
                .collect(),
            _ => vec![(spec.id.clone(), 0)],
        };
        for (name, member) in names {
            let node_clock = clock.for_node();
            let delays = crate::protocol::RequestDelays::default();
            let ctx = ClientContext {
                id: name.clone(),
                bootstrap: bootstrap.clone(),
                clock: node_clock.clone(),
                recorder: recorder.clone(),
                seed: derive_seed(seed, &format!("client/{name}")),
                delays: delays.clone(),
            };
            let builder = world.handle.create_node().name(&name).ip(client_ip(index));
            index += 1;
            let node = match spec.kind {
                ClientKind::Producer => {
                    let producer = config::producer_spec(spec);
                    builder
                        .init(move || client::producer::run(ctx.clone(), producer.clone()))
                        .build()
                }
                ClientKind::Consumer if spec.group.is_some() => {
                    let consumer = config::group_consumer_spec(spec, member);
                    builder
                        .init(move || client::group_consumer::run(ctx.clone(), consumer.clone()))
                        .build()
                }
                ClientKind::Consumer => {
                    let consumer = config::consumer_spec(spec);
                    builder
                        .init(move || client::consumer::run(ctx.clone(), consumer.clone()))
                        .build()
                }
                ClientKind::Transactional => {
                    let producer = config::transactional_spec(spec);
                    builder
                        .init(move || client::transactional::run(ctx.clone(), producer.clone()))
                        .build()
                }
                ClientKind::Pipeline => {
                    let member = config::pipeline_spec(spec, member);
                    builder
                        .init(move || client::group_consumer::run(ctx.clone(), member.clone()))
                        .build()
                }
            };
            world.nodes.insert(
                name,
                SimNode {
                    id: node.id(),
                    broker: None,
                    controller: None,
                    clock: node_clock,
                    disk: None,
                    state: NodeState::Up,
                    shutdown: None,
                    delays,
                },
            );
        }
    }
}

/// A node's simulated disk, kept in the slot (for the final state and `--keep-disks`), and the
/// `Disk` handle its process reaches it through. The disk's own clock is the run's, unskewed:
/// the kernel writes back on monotonic time.
fn node_disk(
    name: &str,
    scenario: &Scenario,
    seed: u64,
    clock: &Clock,
    slot: &Arc<Mutex<Slot>>,
    buggify: crate::world::buggify::Buggify,
) -> (Arc<Mutex<SimDisk>>, Disk) {
    let config = DiskConfig {
        latency_us: (scenario.disk.latency_us.lo, scenario.disk.latency_us.hi),
        writeback_ms: scenario.disk.writeback_ms,
        sector_bytes: 512,
    };
    let sim_disk = Arc::new(Mutex::new(SimDisk::new(config)));
    let disk_clock = clock.clone();
    let backend = SimDiskBackend::new(
        sim_disk.clone(),
        derive_seed(seed, &format!("disk/{name}")),
        Arc::new(move || disk_clock.elapsed_ms()),
    )
    .with_buggify(buggify);
    slot.lock()
        .expect("slot lock")
        .disks
        .insert(name.to_string(), sim_disk.clone());
    (sim_disk, Disk::new(Arc::new(backend)))
}

fn collect(slot: Arc<Mutex<Slot>>, panic: Option<String>) -> RunOutput {
    let slot = std::mem::take(&mut *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    let recorder = slot
        .recorder
        .expect("the simulation starts by creating its recorder");
    let mut journal =
        std::mem::take(&mut *recorder.journal.lock().unwrap_or_else(|p| p.into_inner()));
    let disks: BTreeMap<String, BTreeMap<String, Vec<u8>>> = slot
        .disks
        .iter()
        .map(|(name, disk)| {
            let disk = disk.lock().unwrap_or_else(|p| p.into_inner());
            let files = disk
                .files()
                .map(|(path, bytes)| (path.to_string(), bytes.to_vec()))
                .collect();
            (name.clone(), files)
        })
        .collect();
    let (partitions, replicas, deleted) = {
        let figures = recorder.figures.lock().unwrap_or_else(|p| p.into_inner());
        (
            figures.partitions.clone(),
            figures.replicas.clone(),
            figures.deleted.clone(),
        )
    };
    let mut final_state = final_state::read(&partitions, &replicas, &disks);
    final_state.deleted = deleted;
    let last_ms = journal.trace.last().map(|e| e.at_ms).unwrap_or(0);
    if let Some(message) = panic {
        final_state
            .panics
            .push(("cluster".to_string(), last_ms, message));
    }
    (final_state.metadata_logs, final_state.metadata_log_starts) =
        final_state::read_metadata_logs(&disks);
    let violations = check::check_all(&journal.history, &journal.trace, &final_state);
    journal.digest_extra(&serde_json::to_vec(&final_state).expect("the final state serializes"));
    RunOutput {
        journal,
        final_state,
        violations,
        sim_ms: slot.sim_ms.max(last_ms),
        messages: slot.messages,
        disks,
    }
}
