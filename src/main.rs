//! `votecast` command line: `run`, `status`, `demo`, `bench`. Exit status 0 on success or clean
//! shutdown, 2 for bad usage or configuration, 1 for runtime failures (3 from `status`
//! when the node's view is stale).

use std::process::ExitCode;

use votecast::daemon::cli::{parse_command_line, Command};
use votecast::daemon::error::EXIT_RUNTIME;
use votecast::daemon::status::{self, StatusExit};
use votecast::daemon::unix_now_ms;

fn main() -> ExitCode {
    let command = match parse_command_line(std::env::args_os()) {
        Ok(command) => command,
        Err(err) if err.is_help => {
            print!("{}", err.message);
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("votecast: {}", err.message);
            return ExitCode::from(votecast::daemon::error::EXIT_USAGE);
        }
    };
    match command {
        Command::Run(settings) => {
            env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
                .format_timestamp_millis()
                .init();
            match votecast::driver::run(settings) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    log::error!("{err}");
                    eprintln!("votecast: {err}");
                    ExitCode::from(err.exit_code())
                }
            }
        }
        Command::Status { state_file, json } => {
            let report = status::run_status(&state_file, json, unix_now_ms());
            if report.exit == StatusExit::Unreadable && !json {
                // An error, not a state: to stderr, like every other error. With --json the
                // reader expects one JSON object on stdout, so {"error": ...} stays there.
                eprintln!("votecast: error: {}", report.text);
            } else {
                println!("{}", report.text);
            }
            ExitCode::from(report.exit.code())
        }
        Command::Demo { nodes } => match votecast::demo::run(nodes) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("votecast demo: {err}");
                ExitCode::from(EXIT_RUNTIME)
            }
        },
        Command::Bench(settings) => match votecast::bench::run(&settings) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("votecast bench: {err}");
                ExitCode::from(EXIT_RUNTIME)
            }
        },
    }
}
