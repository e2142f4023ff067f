//! A command's stdout and stderr (an on-change hook's, a track command's): read from pipes
//! by the worker that runs it, and logged line by line or kept for the caller.
//!
//! The worker reads whenever data is there (so a command never blocks on a full pipe),
//! logs (or keeps) at most [`MAX_LOGGED_PER_RUN`] bytes per run ([`MAX_KEPT`] when kept)
//! and at most [`MAX_LINE`] bytes of one line, and counts what it leaves out. Reading never blocks: [`Output::pump`] waits in
//! `poll` with a timeout, and [`Output::finish`] only takes what is already in the pipes.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// Bytes of output (both streams, line ends included) logged per run.
pub const MAX_LOGGED_PER_RUN: usize = 16 * 1024;
/// Longer lines are cut here (and the cut counted as not logged).
pub const MAX_LINE: usize = 1024;
/// Bytes of output kept per run for the caller ([`Output::keeping`]).
pub const MAX_KEPT: usize = 1024;
/// Bytes read from a pipe at a time.
const READ_CHUNK: usize = 4096;

/// One captured stream.
struct Stream {
    name: &'static str,
    pipe: Option<File>,
    line: Vec<u8>,
    /// The current line passed [`MAX_LINE`]; the rest of it is dropped.
    cut: bool,
}

/// Both captured streams of one run, and what was logged of them.
pub struct Output {
    /// What runs: "on-change hook", "track command".
    kind: &'static str,
    what: String,
    /// `Some`: lines are kept here (at most [`MAX_KEPT`] bytes) instead of logged.
    kept: Option<String>,
    streams: [Stream; 2],
    logged: usize,
    not_logged: u64,
}

impl Output {
    /// Logs every line as `KIND WHAT stdout: ...`; `what` names the run (change and pid).
    pub fn new(what: String, stdout: Option<OwnedFd>, stderr: Option<OwnedFd>) -> Output {
        Output::with_kind("on-change hook", what, stdout, stderr)
    }

    /// Logs every line, as run by a `kind` of command.
    pub fn with_kind(
        kind: &'static str,
        what: String,
        stdout: Option<OwnedFd>,
        stderr: Option<OwnedFd>,
    ) -> Output {
        let stream = |name, fd: Option<OwnedFd>| Stream {
            name,
            pipe: fd.map(File::from),
            line: Vec::new(),
            cut: false,
        };
        Output {
            kind,
            what,
            kept: None,
            streams: [stream("stdout", stdout), stream("stderr", stderr)],
            logged: 0,
            not_logged: 0,
        }
    }

    /// Keep the lines (both streams, at most [`MAX_KEPT`] bytes) instead of logging them;
    /// [`Output::take_kept`] hands them over.
    pub fn keeping(mut self) -> Output {
        self.kept = Some(String::new());
        self
    }

    /// The kept lines, `stderr: ` marking the ones from stderr (empty when logging).
    pub fn take_kept(&mut self) -> String {
        self.kept.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Both pipes reached end of file: no process holds their write ends any more.
    pub fn closed(&self) -> bool {
        self.streams.iter().all(|s| s.pipe.is_none())
    }

    /// Waits up to `wait` for output and logs what arrives (one read per ready pipe). With
    /// `wake`, the wait also ends as soon as that descriptor is readable (or hung up); it is
    /// not read here.
    pub fn pump(&mut self, wait: Duration, wake: Option<BorrowedFd<'_>>) {
        let mut ready = [false; 2];
        {
            let mut index = Vec::with_capacity(3);
            let mut fds = Vec::with_capacity(3);
            for (i, s) in self.streams.iter().enumerate() {
                if let Some(pipe) = s.pipe.as_ref() {
                    index.push(Some(i));
                    fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLIN));
                }
            }
            if let Some(wake) = wake {
                index.push(None);
                fds.push(PollFd::new(wake, PollFlags::POLLIN));
            }
            if fds.is_empty() {
                std::thread::sleep(wait);
                return;
            }
            let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
            if poll(&mut fds, timeout).is_err() {
                return; // EINTR: the caller's loop comes back
            }
            for (i, fd) in index.into_iter().zip(fds) {
                if let Some(i) = i {
                    ready[i] = fd.any().unwrap_or(true);
                }
            }
        }
        for (i, stream_ready) in ready.into_iter().enumerate() {
            if stream_ready {
                self.read_once(i);
            }
        }
    }

    /// Logs what is already in the pipes, the unfinished lines and what was left out, and
    /// closes the pipes. Never waits for a writer.
    pub fn finish(&mut self) {
        // Bounded: a writer that escaped the process group cannot keep this going.
        for _ in 0..64 {
            if self.closed() {
                break;
            }
            let before = (self.logged, self.not_logged);
            self.pump(Duration::ZERO, None);
            if (self.logged, self.not_logged) == before {
                break;
            }
        }
        for i in 0..self.streams.len() {
            self.streams[i].pipe = None;
            if !self.streams[i].line.is_empty() || self.streams[i].cut {
                self.end_line(i, false);
            }
        }
        if self.not_logged > 0 && self.kept.is_none() {
            log::warn!(
                "{} {}: {} byte(s) of output not logged (at most {} bytes per run, \
                 {} per line)",
                self.kind,
                self.what,
                self.not_logged,
                MAX_LOGGED_PER_RUN,
                MAX_LINE
            );
        }
    }

    fn read_once(&mut self, i: usize) {
        let mut buf = [0u8; READ_CHUNK];
        let Some(pipe) = self.streams[i].pipe.as_mut() else {
            return;
        };
        match pipe.read(&mut buf) {
            Ok(0) => self.streams[i].pipe = None,
            Ok(n) => self.take(i, &buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted || e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => {
                log::warn!(
                    "{} {}: cannot read its {}: {e}",
                    self.kind,
                    self.what,
                    self.streams[i].name
                );
                self.streams[i].pipe = None;
            }
        }
    }

    /// Splits `bytes` of stream `i` into lines.
    fn take(&mut self, i: usize, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (part, rest, newline) = match bytes.iter().position(|&b| b == b'\n') {
                Some(at) => (&bytes[..at], &bytes[at + 1..], true),
                None => (bytes, &[][..], false),
            };
            let stream = &mut self.streams[i];
            let room = MAX_LINE.saturating_sub(stream.line.len());
            if part.len() > room {
                stream.cut = true;
                self.not_logged += (part.len() - room) as u64;
            }
            stream.line.extend_from_slice(&part[..part.len().min(room)]);
            if newline {
                self.end_line(i, true);
            }
            bytes = rest;
        }
    }

    /// Logs the collected line of stream `i` (`newline`: it ended with one, counted too).
    fn end_line(&mut self, i: usize, newline: bool) {
        let stream = &mut self.streams[i];
        let line = std::mem::take(&mut stream.line);
        let cut = std::mem::replace(&mut stream.cut, false);
        let len = line.len() + usize::from(newline);
        let limit = if self.kept.is_some() {
            MAX_KEPT
        } else {
            MAX_LOGGED_PER_RUN
        };
        if self.logged >= limit {
            self.not_logged += len as u64;
            return;
        }
        self.logged += len;
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let more = if cut { " [cut]" } else { "" };
        let stderr = stream.name == "stderr";
        if let Some(kept) = self.kept.as_mut() {
            let prefix = if stderr { "stderr: " } else { "" };
            let _ = writeln!(kept, "{prefix}{text}{more}");
        } else if stderr {
            log::warn!("{} {} stderr: {text}{more}", self.kind, self.what);
        } else {
            log::info!("{} {} stdout: {text}{more}", self.kind, self.what);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output() -> Output {
        Output::new("test".into(), None, None)
    }

    #[test]
    fn lines_are_split_cut_and_counted() {
        let mut out = output();
        out.take(0, b"one\ntw");
        assert_eq!(out.logged, 4);
        out.take(0, b"o\n");
        assert_eq!(out.logged, 8);
        let long = vec![b'x'; MAX_LINE + 10];
        out.take(1, &long);
        out.take(1, b"yy\n");
        assert_eq!(out.logged, 8 + MAX_LINE + 1);
        assert_eq!(out.not_logged, 12);
        assert!(out.streams[1].line.is_empty() && !out.streams[1].cut);
    }

    #[test]
    fn kept_output_is_bounded_and_marks_stderr() {
        let mut out = output().keeping();
        out.take(0, b"one\n");
        out.take(1, b"two\n");
        assert_eq!(out.take_kept(), "one\nstderr: two\n");
        let line = [b'k'; 99];
        for _ in 0..20 {
            out.take(0, &line);
            out.take(0, b"\n");
        }
        let kept = out.take_kept();
        assert!(kept.len() <= MAX_KEPT + 100, "{}", kept.len());
        assert!(out.not_logged > 0);
        assert_eq!(out.take_kept(), "", "handed over");
    }

    #[test]
    fn output_past_the_run_limit_is_counted_not_logged() {
        let mut out = output();
        let line = [b'z'; 99];
        for _ in 0..(MAX_LOGGED_PER_RUN / 100) {
            out.take(0, &line);
            out.take(0, b"\n");
        }
        assert_eq!(out.not_logged, 0);
        let logged = out.logged;
        for _ in 0..10 {
            out.take(0, &line);
            out.take(0, b"\n");
        }
        assert_eq!(out.logged - logged, 100, "one more line fits, then none");
        assert_eq!(out.not_logged, 9 * 100);
    }
}
