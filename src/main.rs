//! `samsa`: run, list and check scenarios of a simulated Kafka cluster.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[cfg(madsim)]
mod commands;

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
    },
    /// List the scenarios in scenarios/.
    List {
        #[arg(long, default_value = "scenarios")]
        dir: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
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
        } => commands::run(&file, seed, out, check_determinism, keep_disks, quiet),
        Command::List { dir } => commands::list(&dir),
    }
}

#[cfg(not(madsim))]
fn dispatch(_command: Command) -> ExitCode {
    eprintln!("samsa: this build has no simulator; build with RUSTFLAGS=\"--cfg madsim\" (the default in .cargo/config.toml)");
    ExitCode::from(2)
}
