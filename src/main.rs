//! `votecast` command line: `run`, `check-config`, `status`, `demo`, `bench`,
//! `completions`, and the hidden `man` (man pages for packaging). Exit status 0 on success or clean
//! shutdown, 2 for bad usage or configuration, 1 for runtime failures (3 from `status`
//! when the node's view is stale).
//!
//! The exit status says what happened even when stdout or stderr cannot be written (a
//! closed pipe, a full disk): output goes through [`out`] and [`err`], which ignore write
//! errors, never `println!`, which panics on them.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use votecast::daemon::cli::{parse_command_line, Command};
use votecast::daemon::error::{EXIT_RUNTIME, EXIT_USAGE};
use votecast::daemon::status::{self, StatusExit};
use votecast::daemon::unix_now_ms;
use votecast::logging;

/// How long the log writer may take to write the last lines before the process exits
/// anyway (a stuck stderr must not keep a stopped daemon alive).
const LOG_FLUSH_AT_EXIT: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let command = match parse_command_line(std::env::args_os()) {
        Ok(command) => command,
        Err(e) if e.is_help => {
            out(&e.message);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            err(&format!("votecast: {}\n", e.message));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match command {
        Command::Run(settings) => {
            logging::init("info");
            let code = match votecast::driver::run(settings) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    logging::to_stderr(&format!("votecast: {e}\n"));
                    ExitCode::from(e.exit_code())
                }
            };
            logging::flush(LOG_FLUSH_AT_EXIT);
            code
        }
        Command::CheckConfig { settings, quiet } => {
            let report = votecast::daemon::check_config::check(&settings);
            for warning in &report.warnings {
                logging::to_stderr_at(log::Level::Warn, &format!("votecast: {warning}\n"));
            }
            if !quiet {
                out(&report.settings);
            }
            ExitCode::SUCCESS
        }
        Command::Status { state_file, json } => {
            let report = status::run_status(&state_file, json, unix_now_ms());
            if report.exit == StatusExit::Unreadable && !json {
                // An error, not a state: to stderr, like every other error. With --json the
                // reader expects one JSON object on stdout, so {"error": ...} stays there.
                err(&format!("votecast: error: {}\n", report.text));
            } else {
                out(&format!("{}\n", report.text));
            }
            ExitCode::from(report.exit.code())
        }
        Command::Demo { nodes } => match votecast::demo::run(nodes) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                err(&format!("votecast demo: {e}\n"));
                ExitCode::from(EXIT_RUNTIME)
            }
        },
        Command::ReleaseVip { interface, vips } => {
            match votecast::vip::requests::release_and_report(&interface, &vips) {
                Ok(report) => {
                    out(&report);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    err(&format!("votecast release-vip: {e}\n"));
                    ExitCode::from(EXIT_RUNTIME)
                }
            }
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            votecast::daemon::manual::completions(shell, &mut script);
            out(&String::from_utf8_lossy(&script));
            ExitCode::SUCCESS
        }
        Command::Man { dir } => match votecast::daemon::manual::write_man_pages(&dir) {
            Ok(pages) => {
                for page in pages {
                    out(&format!("{}\n", page.display()));
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                err(&format!("votecast man: {}: {e}\n", dir.display()));
                ExitCode::from(EXIT_RUNTIME)
            }
        },
        Command::Bench(settings) => match votecast::bench::run(&settings) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                err(&format!("votecast bench: {e}\n"));
                ExitCode::from(EXIT_RUNTIME)
            }
        },
    }
}

/// `text` to stdout; a write error is ignored (the exit status still tells).
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// `text` to stderr; a write error is ignored (the exit status still tells).
fn err(text: &str) {
    logging::to_stderr(text);
}
