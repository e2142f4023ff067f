//! The man pages (`votecast man DIR`) and shell completions (`votecast completions SHELL`),
//! both generated from the clap definitions in [`super::cli`], so neither can drift from
//! the command line.
//!
//! `clap_mangen` renders each page's NAME, SYNOPSIS, DESCRIPTION and OPTIONS; this module
//! adds what clap does not know: the config file keys (taken from the settings table, with
//! the help text of their flags), the exit status, signals, files and environment.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::settings;

/// Writes `votecast.1` and one `votecast-SUBCOMMAND.1` per visible subcommand into `dir`
/// (created if missing); returns the files written.
pub fn write_man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, page) in man_pages()? {
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page)?;
        written.push(path);
    }
    Ok(written)
}

/// Every page as (name, roff text): `votecast` first, then the subcommands.
pub fn man_pages() -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut top = super::cli::clap_command();
    // Built, so the subcommands carry the propagated version.
    top.build();
    let mut pages = vec![("votecast".to_string(), render(top.clone(), None)?)];
    for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("votecast-{}", sub.get_name());
        let cmd = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("votecast {}", sub.get_name()));
        pages.push((name, render(cmd, Some(sub.get_name()))?));
    }
    Ok(pages)
}

/// One page: clap_mangen's sections, then this module's (`sub`: which subcommand).
fn render(cmd: clap::Command, sub: Option<&str>) -> io::Result<Vec<u8>> {
    let run = super::cli::clap_command()
        .find_subcommand("run")
        .cloned()
        .expect("the run subcommand exists");
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .manual("votecast manual")
        .render(&mut out)?;
    let extra = match sub {
        None => {
            [config_section(&run), exit_section(), signals_section()].concat()
                + &files_section()
                + &environment_section()
                + &see_also(None)
        }
        Some("run") | Some("check-config") => {
            config_section(&run) + &exit_section() + &files_section() + &see_also(sub)
        }
        Some(_) => exit_section() + &see_also(sub),
    };
    out.write_all(extra.as_bytes())?;
    Ok(out)
}

/// Text escaped for roff: backslashes, and a leading `.` or `'` that would start a request.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// `.TP` item with a bold tag.
fn item(out: &mut String, tag: &str, body: &str) {
    let _ = writeln!(out, ".TP\n\\fB{}\\fR", roff(tag));
    for line in body.lines() {
        let _ = writeln!(out, "{}", roff(line.trim()));
    }
}

/// CONFIGURATION FILE: every key of `--config`, described by its flag's help.
fn config_section(run: &clap::Command) -> String {
    let mut out = String::from(".SH \"CONFIGURATION FILE\"\n");
    let _ = writeln!(
        out,
        "{}",
        roff(
            "The --config FILE is TOML with the same keys as the run flags, without the \
             leading dashes; flags override it. An unknown key is an error. Durations are \
             strings such as \"50ms\" or \"2s\"; voters and peers are arrays. \
             votecast check-config prints the effective settings in this format."
        )
    );
    for key in settings::file_keys() {
        let help = run
            .get_arguments()
            .find(|a| a.get_long() == Some(key))
            .and_then(|a| a.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        item(&mut out, key, &help);
    }
    out.push_str(".PP\nExample (/etc/votecast/votecast.toml):\n.PP\n.nf\n");
    for line in [
        "id = 1",
        "voters = [1, 2, 3]",
        "interface = \"eth0\"",
        "data-dir = \"/var/lib/votecast\"",
        "state-file = \"/run/votecast/state.json\"",
        "tick = \"50ms\"",
    ] {
        let _ = writeln!(out, "{}", roff(line));
    }
    out.push_str(".fi\n");
    out
}

fn exit_section() -> String {
    let mut out = String::from(".SH \"EXIT STATUS\"\n");
    for (code, meaning) in [
        (
            "0",
            "Success; for run, a clean shutdown after SIGTERM or SIGINT; for check-config, \
             a valid configuration (warnings, such as a missing interface, on stderr).",
        ),
        (
            "1",
            "Runtime failure: the group cannot be joined on a usable interface, a corrupt \
             or unwritable data directory.",
        ),
        (
            "2",
            "Bad usage or configuration; the message on stderr names the flag or config key. \
             The packaged unit does not restart on it (RestartPreventExitStatus=2).",
        ),
        (
            "3",
            "status only: the state file is stale (the daemon stopped updating it).",
        ),
    ] {
        item(&mut out, code, meaning);
    }
    out
}

fn signals_section() -> String {
    let mut out = String::from(".SH SIGNALS\n");
    for (signal, meaning) in [
        (
            "SIGTERM, SIGINT",
            "Graceful stop: a leader resigns and hands over first, then the process exits 0.",
        ),
        (
            "SIGHUP",
            "Reload the key file and the zxid file (RELOADING=1 ... READY=1 to systemd).",
        ),
        ("SIGUSR1", "Log the node's state and counters."),
    ] {
        item(&mut out, signal, meaning);
    }
    out
}

fn files_section() -> String {
    let mut out = String::from(".SH FILES\n");
    for (file, meaning) in [
        (
            "/etc/votecast/votecast.toml",
            "The configuration read by the packaged systemd unit (run --config).",
        ),
        (
            "/var/lib/votecast",
            "data-dir: the durable epochs and incarnation counter (StateDirectory=).",
        ),
        (
            "/run/votecast/state.json",
            "state-file: the node's live state, read by votecast status (RuntimeDirectory=).",
        ),
        (
            "key-file",
            "Lines \"ID SECRET\"; must not be readable by every user (chmod o-rwx).",
        ),
    ] {
        item(&mut out, file, meaning);
    }
    out
}

fn environment_section() -> String {
    let mut out = String::from(".SH ENVIRONMENT\n");
    for (var, meaning) in [
        (
            "RUST_LOG",
            "Log filter (default info), e.g. debug or votecast::driver=debug.",
        ),
        (
            "JOURNAL_STREAM",
            "When it names stderr's device and inode (set by systemd), log lines carry \
             the <N> priority prefix and no timestamp.",
        ),
        (
            "NOTIFY_SOCKET, WATCHDOG_USEC",
            "systemd readiness, status and watchdog notifications (Type=notify).",
        ),
        (
            "VOTECAST_*",
            "Set for the --on-change hook: the new and previous state, leader, epoch.",
        ),
    ] {
        item(&mut out, var, meaning);
    }
    out
}

fn see_also(sub: Option<&str>) -> String {
    let mut pages: Vec<String> = super::cli::clap_command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && Some(s.get_name()) != sub)
        .map(|s| format!("\\fBvotecast\\-{}\\fR(1)", roff(s.get_name())))
        .collect();
    if sub.is_some() {
        pages.insert(0, "\\fBvotecast\\fR(1)".to_string());
    }
    pages.push("\\fBsystemd.exec\\fR(5)".to_string());
    pages.push("\\fBjournalctl\\fR(1)".to_string());
    format!(".SH \"SEE ALSO\"\n{}\n", pages.join(", "))
}

/// The completion script for `shell`, as `votecast completions SHELL` prints it.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) {
    // clap_complete's bash script would offer hidden subcommands (`man`) too: complete a
    // copy of the command line that has only the visible ones.
    let top = super::cli::clap_command();
    let mut cmd = clap::Command::new("votecast")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .disable_help_subcommand(true)
        .subcommands(top.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    clap_complete::generate(shell, &mut cmd, "votecast", out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(name: &str) -> String {
        let pages = man_pages().unwrap();
        let (_, text) = pages.iter().find(|(n, _)| n == name).expect(name);
        String::from_utf8(text.clone()).unwrap()
    }

    #[test]
    fn there_is_a_page_per_visible_subcommand_and_none_for_man() {
        let names: Vec<String> = man_pages().unwrap().into_iter().map(|(n, _)| n).collect();
        for name in [
            "votecast",
            "votecast-run",
            "votecast-check-config",
            "votecast-status",
            "votecast-completions",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        assert!(!names.iter().any(|n| n == "votecast-man"), "{names:?}");
    }

    #[test]
    fn the_run_page_has_every_flag_and_config_key_and_the_extra_sections() {
        let text = page("votecast-run");
        assert!(text.starts_with(".ie \\n(.g .ds Aq") || text.contains(".TH votecast-run"));
        for key in settings::file_keys() {
            let tag = format!(".TP\n\\fB{}\\fR\n", roff(key));
            assert!(text.contains(&tag), "config key {key} in the run page");
            assert!(text.contains(&format!("\\-\\-{}", roff(key))), "--{key}");
        }
        for section in [
            ".SH \"CONFIGURATION FILE\"",
            ".SH \"EXIT STATUS\"",
            ".SH FILES",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(text.contains(section), "{section}");
        }
        // A key's description is its flag's help.
        assert!(text.contains("Ticks a follower may go without hearing from its leader"));
        let top = page("votecast");
        for section in [".SH SIGNALS", ".SH ENVIRONMENT", ".SH \"EXIT STATUS\""] {
            assert!(top.contains(section), "{section}");
        }
        assert!(top.contains("SIGHUP"));
    }

    #[test]
    fn roff_escapes_requests_and_backslashes() {
        assert_eq!(roff(".hidden"), "\\&.hidden");
        assert_eq!(roff("'quote"), "\\&'quote");
        assert_eq!(roff("a\\b"), "a\\eb");
        assert_eq!(roff("--tick"), "\\-\\-tick");
    }

    #[test]
    fn completions_know_the_subcommands_and_flags() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            completions(shell, &mut out);
            let text = String::from_utf8(out).unwrap();
            for word in ["check-config", "max-notification-interval", "state-file"] {
                assert!(text.contains(word), "{shell}: {word}");
            }
            assert!(
                !text.contains("subcmd__man"),
                "{shell}: the hidden man subcommand"
            );
        }
    }
}
