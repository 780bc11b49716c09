//! How fast the simulation runs, against what madsim itself costs (issue 6's speed acceptance).
//!
//! Two runs in one process, one after the other:
//!
//! - `echo`: bare madsim, two nodes, one TCP connection; one node sends a 100-byte frame, the
//!   other sends it back, round after round, with the network latency of `bench-steady.toml`.
//!   This is the floor: what one simulated network message costs with nothing behind it.
//! - `cluster`: `scenarios/bench/bench-steady.toml` through `samsa::runner::run`.
//!
//! For each: simulated seconds, wall seconds, simulated seconds per wall second, network
//! messages (madsim's own count), wall nanoseconds per message, and peak RSS. The target: the
//! cluster's cost per message within 4x of the echo's.
//!
//! Run with `cargo bench --bench steady`. `SAMSA_BENCH_SECONDS=N` shortens the cluster run to
//! N simulated seconds; `SAMSA_BENCH_ECHO_ROUNDS=N` sets the echo's round trips.

#[cfg(not(madsim))]
fn main() {
    eprintln!("benches/steady.rs measures the simulation: build with --cfg madsim (the default)");
}

#[cfg(madsim)]
fn main() {
    bench::main();
}

#[cfg(madsim)]
mod bench {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::path::Path;
    use std::time::{Duration, Instant};

    use samsa::scenario::Scenario;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// The cluster's cost per message may be at most this many times the echo's.
    const TARGET_RATIO: f64 = 4.0;
    /// A frame: a 4-byte length, then the payload (about a small Kafka request).
    const FRAME_BYTES: usize = 100;
    /// A million round trips: about a second of wall time, long enough to be steady.
    const ECHO_ROUNDS_DEFAULT: u64 = 1_000_000;
    const ECHO_PORT: u16 = 7;

    /// One run's figures.
    struct Figures {
        name: &'static str,
        sim_s: f64,
        wall_s: f64,
        messages: u64,
        /// Peak resident set of the process during this run, in MiB (`None` off Linux).
        peak_rss_mib: Option<f64>,
    }

    impl Figures {
        fn ns_per_message(&self) -> f64 {
            self.wall_s * 1e9 / self.messages.max(1) as f64
        }
    }

    pub fn main() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/bench/bench-steady.toml");
        let mut scenario = samsa::scenario::parse_file(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Some(seconds) = env_u64("SAMSA_BENCH_SECONDS") {
            scenario.duration_ms = seconds * 1000;
        }
        let rounds = env_u64("SAMSA_BENCH_ECHO_ROUNDS").unwrap_or(ECHO_ROUNDS_DEFAULT);

        reset_peak_rss();
        let echo = echo(&scenario, rounds);
        reset_peak_rss();
        let (cluster, outcome) = cluster(&scenario);
        print_table(&scenario, rounds, &[&echo, &cluster], &outcome);
    }

    fn env_u64(name: &str) -> Option<u64> {
        let text = std::env::var(name).ok()?;
        Some(
            text.parse()
                .unwrap_or_else(|_| panic!("{name}={text}: not a number")),
        )
    }

    /// madsim's configuration for the scenario, as the runner builds it: the same latency range.
    fn madsim_config(scenario: &Scenario) -> madsim::Config {
        let mut config = madsim::Config::default();
        let latency = scenario.network.latency_us;
        config.net.send_latency = Duration::from_micros(latency.lo)
            ..Duration::from_micros(latency.hi.max(latency.lo + 1));
        config.net.packet_loss_rate = scenario.network.loss;
        config
    }

    fn echo(scenario: &Scenario, rounds: u64) -> Figures {
        let runtime =
            madsim::runtime::Runtime::with_seed_and_config(scenario.seed, madsim_config(scenario));
        let started = Instant::now();
        let (sim, messages) = runtime.block_on(echo_world(rounds));
        let wall_s = started.elapsed().as_secs_f64();
        drop(runtime);
        Figures {
            name: "echo",
            sim_s: sim.as_secs_f64(),
            wall_s,
            messages,
            peak_rss_mib: peak_rss_mib(),
        }
    }

    /// Returns the simulated time the round trips took and the messages madsim delivered.
    async fn echo_world(rounds: u64) -> (Duration, u64) {
        let handle = madsim::runtime::Handle::current();
        let server_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let server_addr = SocketAddr::new(server_ip, ECHO_PORT);
        handle
            .create_node()
            .name("echo-server")
            .ip(server_ip)
            .init(move || serve_echo(server_addr))
            .build();
        let client = handle
            .create_node()
            .name("echo-client")
            .ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)))
            .build();
        let started = tokio::time::Instant::now();
        client
            .spawn(round_trips(server_addr, rounds))
            .await
            .expect("the echo client finished");
        let sim = started.elapsed();
        let messages = madsim::net::NetSim::current().stat().msg_count;
        (sim, messages)
    }

    async fn serve_echo(addr: SocketAddr) {
        let listener = TcpListener::bind(addr).await.expect("echo bind");
        loop {
            let (mut stream, _peer) = listener.accept().await.expect("echo accept");
            tokio::spawn(async move {
                let mut frame = [0u8; FRAME_BYTES];
                while stream.read_exact(&mut frame).await.is_ok() {
                    stream.write_all(&frame).await.expect("echo write");
                    stream.flush().await.expect("echo flush");
                }
            });
        }
    }

    /// `rounds` request/response round trips, one at a time on one connection.
    async fn round_trips(addr: SocketAddr, rounds: u64) {
        let mut stream = loop {
            match TcpStream::connect(addr).await {
                Ok(stream) => break stream,
                // The server node may not be listening yet.
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        };
        let mut frame = [0u8; FRAME_BYTES];
        frame[..4].copy_from_slice(&(FRAME_BYTES as u32 - 4).to_be_bytes());
        let mut reply = [0u8; FRAME_BYTES];
        for round in 0..rounds {
            frame[4..12].copy_from_slice(&round.to_be_bytes());
            stream.write_all(&frame).await.expect("client write");
            stream.flush().await.expect("client flush");
            stream.read_exact(&mut reply).await.expect("client read");
            assert_eq!(reply, frame, "the echo returns what was sent");
        }
    }

    fn cluster(scenario: &Scenario) -> (Figures, String) {
        let started = Instant::now();
        let output = samsa::runner::run(scenario, scenario.seed);
        let wall_s = started.elapsed().as_secs_f64();
        let outcome = if output.violations.is_empty() {
            "no violations".to_string()
        } else {
            let names: Vec<String> = output.violations.iter().map(|v| v.check.clone()).collect();
            format!("violations: {}", names.join(", "))
        };
        let figures = Figures {
            name: "cluster",
            sim_s: output.sim_ms as f64 / 1000.0,
            wall_s,
            messages: output.messages,
            peak_rss_mib: peak_rss_mib(),
        };
        drop(output);
        (figures, outcome)
    }

    fn print_table(scenario: &Scenario, rounds: u64, runs: &[&Figures], outcome: &str) {
        let latency = scenario.network.latency_us;
        println!(
            "steady: echo = {rounds} round trips of {FRAME_BYTES} B; cluster = {} ({} s simulated, {outcome}); latency {}us..{}us",
            scenario.name,
            scenario.duration_ms / 1000,
            latency.lo,
            latency.hi
        );
        println!(
            "{:<8} {:>10} {:>9} {:>12} {:>11} {:>12} {:>13}",
            "run", "sim s", "wall s", "sim s/wall s", "messages", "wall ns/msg", "peak RSS MiB"
        );
        for run in runs {
            let rss = run
                .peak_rss_mib
                .map_or_else(|| "n/a".to_string(), |mib| format!("{mib:.1}"));
            println!(
                "{:<8} {:>10.1} {:>9.2} {:>12.1} {:>11} {:>12.0} {:>13}",
                run.name,
                run.sim_s,
                run.wall_s,
                run.sim_s / run.wall_s,
                run.messages,
                run.ns_per_message(),
                rss
            );
        }
        let [echo, cluster] = runs else {
            unreachable!("two runs")
        };
        let ratio = cluster.ns_per_message() / echo.ns_per_message();
        let verdict = if ratio <= TARGET_RATIO {
            "within"
        } else {
            "above"
        };
        println!(
            "cluster/echo wall ns per message: {ratio:.2}x ({verdict} the {TARGET_RATIO}x target)"
        );
    }

    /// Linux: restart the peak-RSS count (`VmHWM`) at the current RSS, so each run reports its
    /// own peak (proc(5), `/proc/pid/clear_refs`, value 5). Elsewhere, or if refused, nothing.
    fn reset_peak_rss() {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }

    /// `VmHWM` from /proc/self/status, in MiB.
    fn peak_rss_mib() -> Option<f64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }
}
