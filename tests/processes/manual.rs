//! `votecast completions SHELL` and `votecast man DIR`, end to end: the bash script is
//! valid bash and completes the subcommands, the zsh and fish scripts are accepted by their
//! shells when installed, the man pages render without warnings under `man` (package
//! man-db, installed by .ci/run; required when CI is set), and a bad shell name exits 2.

use std::path::Path;
use std::process::{Command, Stdio};

use super::cli_errors::{expect_usage_error, run, scratch, strings};

fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let required = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    assert!(
        found || !required || name != "man",
        "{name} missing (apt-get install man-db)"
    );
    if !found {
        eprintln!("NOT CHECKED: {name} not installed");
    }
    found
}

#[test]
fn completion_scripts_are_valid_in_their_shells() {
    let s = scratch("completions");
    for (shell, checker, args) in [
        ("bash", "bash", vec!["-n"]),
        ("zsh", "zsh", vec!["-n"]),
        ("fish", "fish", vec!["--no-execute"]),
    ] {
        let done = run(&strings(&["completions", shell]), s.path());
        assert_eq!(done.code, Some(0), "{done:?}");
        assert!(
            done.stdout.contains("check-config"),
            "{shell}: {}",
            done.stdout
        );
        assert!(
            !done.stdout.contains("subcmd__man"),
            "the hidden man subcommand"
        );
        if shell == "bash" || tool(checker) {
            let file = s.path().join(format!("votecast.{shell}"));
            std::fs::write(&file, &done.stdout).unwrap();
            let out = Command::new(checker)
                .args(&args)
                .arg(&file)
                .output()
                .unwrap();
            assert!(out.status.success(), "{shell}: {out:?}");
        }
    }
    let bad = strings(&["completions", "tcsh"]);
    expect_usage_error("unknown shell", &bad, "tcsh", s.path());
}

#[test]
fn the_man_pages_render_without_warnings() {
    let s = scratch("man");
    let dir = s.path().join("man1");
    let done = run(&strings(&["man", dir.to_str().unwrap()]), s.path());
    assert_eq!(done.code, Some(0), "{done:?}");
    let pages: Vec<&str> = done.stdout.lines().collect();
    assert!(pages.len() >= 6, "{pages:?}");
    for page in &pages {
        assert!(Path::new(page).is_file(), "{page}");
    }
    if !tool("man") {
        return;
    }
    for page in pages {
        let out = Command::new("man")
            .args(["--warnings", "-l", page])
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        // man may embolden by overstriking ("E\x08E"): keep the last of each pair.
        let mut text = String::new();
        for c in String::from_utf8_lossy(&out.stdout).chars() {
            if c == '\x08' {
                text.pop();
            } else {
                text.push(c);
            }
        }
        assert!(out.status.success(), "{page}: {out:?}");
        assert!(
            out.stderr.is_empty(),
            "{page}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("EXIT STATUS"), "{page}: {text}");
    }
}
