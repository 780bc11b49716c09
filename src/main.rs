//! `samsa`: run, list and check scenarios of a simulated Kafka cluster.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[cfg(madsim)]
mod commands;
#[cfg(madsim)]
mod explore_command;
#[cfg(madsim)]
mod sweep;

#[derive(Parser)]
#[command(
    name = "samsa",
    version,
    about = "A deterministic simulation of a full Kafka cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario and write its run folder.
    Run {
        file: std::path::PathBuf,
        /// The seed (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// The run folder (default: reports/<scenario>/seed-<N>/).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Run twice more under madsim's determinism check and compare the trace digests.
        #[arg(long)]
        check_determinism: bool,
        /// Also write every broker's final disk into the run folder.
        #[arg(long)]
        keep_disks: bool,
        /// Print only the last two lines (digest and outcome).
        #[arg(long)]
        quiet: bool,
        /// Write no run folder (what `samsa sweep` runs each seed with).
        #[arg(long, hide = true)]
        no_folder: bool,
    },
    /// Run one scenario over many seeds, each in a process of its own, in parallel; list every
    /// failing seed with the command that reproduces it.
    Sweep {
        file: std::path::PathBuf,
        /// The seeds, A..B (B included).
        #[arg(long)]
        seeds: String,
        /// Runs at a time (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Only the seeds of shard I of N (`--shard 2/4`), to split a sweep across machines.
        #[arg(long)]
        shard: Option<String>,
        /// Where `sweep.json` goes (default: reports/<scenario>/sweep-A..B/).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Add random fault schedules to a scenario (swarm testing over proptest strategies), each
    /// case in a process of its own; shrink the first failing schedule to a minimal one and write
    /// it as a scenario file that `samsa run` reproduces.
    Explore {
        file: std::path::PathBuf,
        /// How many cases (random schedules) to run at most.
        #[arg(long, default_value_t = 100)]
        cases: u64,
        /// The master seed: the same one draws the same cases.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Cases at a time (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Where the cases, the minimal scenario and `explore.json` go (default:
        /// reports/<scenario>/explore-seed-<M>/).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// The fault kinds to draw from, comma-separated: crash, kill, pause, partition, clog,
        /// loss, slow-disk, disk-full, corrupt, clock-skew, and `buggify` (a quarter of the
        /// swarms switch the cluster's fault points on) (default: all but corrupt, which is not
        /// undone).
        #[arg(long)]
        faults: Option<String>,
        /// Shrinking tries at most this many schedules.
        #[arg(long, default_value_t = 200)]
        max_shrink_iters: u32,
    },
    /// Run one scenario and tell what happens as it goes: faults, elections, truncations, with
    /// the chatty events coalesced; then each violation's story.
    Explain {
        file: std::path::PathBuf,
        /// The seed (default: the scenario's `seed`).
        #[arg(long)]
        seed: Option<u64>,
        /// Wait for Enter at each fault.
        #[arg(long)]
        pause: bool,
    },
    /// List the scenarios in scenarios/.
    List {
        #[arg(long, default_value = "scenarios")]
        dir: std::path::PathBuf,
    },
    /// Print segment, index, time-index and checkpoint files (or every file under a directory)
    /// as kafka-dump-log.sh does.
    DumpLog {
        path: std::path::PathBuf,
        /// Also print every record, with its key and payload.
        #[arg(long)]
        print_data_log: bool,
        /// For indexes: run Kafka's sanity check and check every entry against the segment.
        #[arg(long)]
        index_sanity_check: bool,
    },
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                print!("{e}");
                return ExitCode::SUCCESS;
            }
            // One line: clap's first, which names the flag and what is wrong with it.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            eprintln!("samsa: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    dispatch(cli.command)
}

#[cfg(madsim)]
fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Run {
            file,
            seed,
            out,
            check_determinism,
            keep_disks,
            quiet,
            no_folder,
        } => commands::run(
            &commands::scenario_path(file),
            seed,
            out,
            commands::RunOptions {
                check_determinism,
                keep_disks,
                quiet,
                no_folder,
            },
        ),
        Command::Sweep {
            file,
            seeds,
            jobs,
            shard,
            out,
        } => sweep::sweep(
            &commands::scenario_path(file),
            &seeds,
            jobs,
            shard.as_deref(),
            out,
        ),
        Command::Explore {
            file,
            cases,
            seed,
            jobs,
            out,
            faults,
            max_shrink_iters,
        } => explore_command::explore(
            &commands::scenario_path(file),
            explore_command::ExploreOptions {
                cases,
                seed,
                jobs,
                out,
                faults,
                max_shrink_iters,
            },
        ),
        Command::Explain { file, seed, pause } => {
            commands::explain(&commands::scenario_path(file), seed, pause)
        }
        Command::List { dir } => commands::list(&dir),
        Command::DumpLog {
            path,
            print_data_log,
            index_sanity_check,
        } => dump_log(&path, print_data_log, index_sanity_check),
    }
}

#[cfg(not(madsim))]
fn dispatch(command: Command) -> ExitCode {
    match command {
        // Reads files only: needs no simulator.
        Command::DumpLog {
            path,
            print_data_log,
            index_sanity_check,
        } => dump_log(&path, print_data_log, index_sanity_check),
        _ => {
            eprintln!("samsa: this build has no simulator; build with RUSTFLAGS=\"--cfg madsim\" (the default in .cargo/config.toml)");
            ExitCode::from(2)
        }
    }
}

/// `samsa dump-log`: 0 when the files were dumped (whatever they hold), 2 with one line when
/// one cannot be read as what its name says.
fn dump_log(path: &std::path::Path, print_data_log: bool, index_sanity_check: bool) -> ExitCode {
    use samsa::dump::{dump_path, DumpError, DumpOptions};
    use std::io::Write;

    let opts = DumpOptions {
        print_data_log,
        index_sanity_check,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let result =
        dump_path(path, &opts, &mut out).and_then(|()| out.flush().map_err(DumpError::Output));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): not an error of ours.
        Err(DumpError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            // What was dumped before the error comes first.
            let _ = out.flush();
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`samsa run … | head`) fails and
/// `println!` panics; with the signal's default action the process ends quietly instead, as
/// `cat` does.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default, before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
