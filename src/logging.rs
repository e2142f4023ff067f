//! The daemon's logger and the rate limit of repeated warnings.
//!
//! The event loop must never wait for its log: a full stderr pipe (a stalled journald, a
//! terminal on hold, a reader that stopped) would otherwise stall the election with it.
//! So [`init`] installs a [`log::Log`] that formats each record into a buffer taken from
//! a fixed pool and queues it; one writer thread writes the queue to stderr. When the
//! pool is empty (the writer is behind), the line is dropped and counted, and the next
//! line that gets through is preceded by "N log lines dropped". A write error (EPIPE,
//! ENOSPC, a closed stderr) loses that line and nothing else: it never panics and never
//! stops the daemon. The buffers are allocated once and reused, so logging allocates
//! nothing in the steady state unless a line outgrows its buffer.
//!
//! The filter is `RUST_LOG`, parsed by `env_logger` (default `info`); the format is
//! env_logger's: `[2024-05-01T12:00:00.123Z INFO  votecast::driver] message`.
//!
//! Under systemd, when stderr is the journal stream (`JOURNAL_STREAM` names stderr's
//! device and inode, as systemd.exec(5) says to check), each line starts with the
//! sd-daemon(3) priority prefix instead of a timestamp: `<4>[WARN  votecast::driver]
//! message` (error 3, warn 4, info 6, debug and trace 7). journald stamps the time itself
//! and files the line under that priority, so `journalctl -p warning` works. Every line of
//! a multi-line message carries the prefix, and text written with [`to_stderr`] (the last
//! words of the process, errors) carries `<3>`. Anywhere else (a terminal, a file, a pipe,
//! or stderr redirected away from the journal by the unit) the format is unchanged.
//!
//! [`RateLimit`] keeps a repeated warning (a send error, a state file that cannot be
//! written, a bad zxid file) visible without flooding the log: the first is logged,
//! then at most one per interval, each saying how many were suppressed since.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{Level, Log, Metadata, Record};

/// Lines that may wait for the writer; more are dropped and counted.
pub const QUEUE_LINES: usize = 256;
/// The capacity each pooled buffer starts with (most lines are shorter).
const LINE_CAPACITY: usize = 256;
/// A buffer that grew beyond this for one long line is given back to the allocator.
const MAX_KEPT_CAPACITY: usize = 4096;
/// The usual interval of a [`RateLimit`]: often enough to see that a fault persists.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// How a log line starts: with a timestamp, or with a journal priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStyle {
    /// `[2024-05-01T12:00:00.123Z INFO  target] `.
    Plain,
    /// `<6>[INFO  target] `: stderr is connected to the journal.
    Journal,
}

impl LineStyle {
    /// [`LineStyle::Journal`] if `journal_stream` (the value of `JOURNAL_STREAM`,
    /// `DEVICE:INODE` in decimal) names the stream whose device and inode are `stderr`.
    /// A stale variable inherited by a process whose stderr was redirected does not match.
    pub fn detect(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> LineStyle {
        let parsed = journal_stream
            .and_then(|v| v.split_once(':'))
            .and_then(|(dev, ino)| Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?)));
        match (parsed, stderr) {
            (Some(named), Some(actual)) if named == actual => LineStyle::Journal,
            _ => LineStyle::Plain,
        }
    }

    /// The style for this process's stderr.
    fn of_this_process() -> LineStyle {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        let journal_stream = std::env::var("JOURNAL_STREAM").ok();
        let stderr = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(std::fs::File::from)
            .and_then(|f| f.metadata().ok())
            .map(|m| (m.dev(), m.ino()));
        LineStyle::detect(journal_stream.as_deref(), stderr)
    }
}

/// The sd-daemon(3) priority of a log level (syslog's numbers).
fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// The queue between the loggers and the writer thread.
pub struct LineQueue {
    style: LineStyle,
    state: Mutex<QueueState>,
    /// Signalled when a line is queued.
    queued: Condvar,
    /// Signalled when the writer has written everything queued.
    idle: Condvar,
}

struct QueueState {
    pending: VecDeque<String>,
    free: Vec<String>,
    dropped: u64,
    writing: bool,
}

impl LineQueue {
    /// A queue of `lines` preallocated buffers, and its writer thread writing to `sink`.
    pub fn start<W: Write + Send + 'static>(lines: usize, sink: W) -> Arc<LineQueue> {
        LineQueue::start_styled(lines, sink, LineStyle::Plain)
    }

    /// [`LineQueue::start`], with lines (its own notices included) in `style`.
    pub fn start_styled<W: Write + Send + 'static>(
        lines: usize,
        sink: W,
        style: LineStyle,
    ) -> Arc<LineQueue> {
        let queue = Arc::new(LineQueue {
            style,
            state: Mutex::new(QueueState {
                pending: VecDeque::with_capacity(lines),
                free: (0..lines)
                    .map(|_| String::with_capacity(LINE_CAPACITY))
                    .collect(),
                dropped: 0,
                writing: false,
            }),
            queued: Condvar::new(),
            idle: Condvar::new(),
        });
        let writer = Arc::clone(&queue);
        let spawned = std::thread::Builder::new()
            .name("votecast-log".into())
            .spawn(move || writer.write_all_to(sink));
        if spawned.is_err() {
            // No writer: every line is dropped (and counted), nothing blocks.
            queue.lock().free.clear();
        }
        queue
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while the lock was held cannot leave the queue inconsistent (every
        // update is one push or pop): keep logging.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue one line written by `format` (without its newline); dropped and counted when
    /// every buffer is in use. Never waits for the writer.
    pub fn push(&self, format: impl FnOnce(&mut String)) {
        let (mut buf, dropped) = {
            let mut state = self.lock();
            match state.free.pop() {
                Some(buf) => (buf, std::mem::take(&mut state.dropped)),
                None => {
                    state.dropped += 1;
                    return;
                }
            }
        };
        buf.clear();
        if dropped > 0 {
            write_record(
                &mut buf,
                self.style,
                SystemTime::now(),
                Level::Warn,
                module_path!(),
                format_args!("{dropped} log lines dropped (stderr was not keeping up)"),
            );
            buf.push('\n');
        }
        // Formatted without the lock: a Display impl that logs must not deadlock.
        format(&mut buf);
        buf.push('\n');
        self.lock().pending.push_back(buf);
        self.queued.notify_one();
    }

    /// Queue `text` as it is (in the journal style each line prefixed with the error
    /// priority), even when every pooled buffer is in use (for the last words of the
    /// process, which must not be lost to the pool's limit).
    pub fn push_text(&self, text: &str) {
        let text = match self.style {
            LineStyle::Plain => text.to_string(),
            LineStyle::Journal => journal_text(text),
        };
        self.lock().pending.push_back(text);
        self.queued.notify_one();
    }

    /// Lines dropped since the last one that got through.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Wait until everything queued is written, or `timeout` passed (a blocked stderr must
    /// not keep the process from exiting). True when everything was written.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while !state.pending.is_empty() || state.writing {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.idle.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }

    /// The writer thread: write each queued line, give its buffer back to the pool.
    fn write_all_to<W: Write>(&self, mut sink: W) {
        loop {
            let line = {
                let mut state = self.lock();
                loop {
                    if let Some(line) = state.pending.pop_front() {
                        state.writing = true;
                        break line;
                    }
                    state = match self.queued.wait(state) {
                        Ok(state) => state,
                        Err(e) => e.into_inner(),
                    };
                }
            };
            // A failed write loses this line only; there is nowhere left to report it.
            let _ = sink.write_all(line.as_bytes());
            let _ = sink.flush();
            let mut state = self.lock();
            if line.capacity() <= MAX_KEPT_CAPACITY {
                state.free.push(line);
            } else {
                state.free.push(String::with_capacity(LINE_CAPACITY));
            }
            state.writing = false;
            if state.pending.is_empty() {
                self.idle.notify_all();
            }
        }
    }
}

/// The `log` front end: `RUST_LOG` decides, a [`LineQueue`] writes.
struct QueueLogger {
    filter: env_logger::Logger,
    queue: Arc<LineQueue>,
}

impl Log for QueueLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.filter.matches(record) {
            return;
        }
        let style = self.queue.style;
        self.queue.push(|buf| {
            write_record(
                buf,
                style,
                SystemTime::now(),
                record.level(),
                record.target(),
                *record.args(),
            );
        });
    }

    fn flush(&self) {
        self.queue.flush(Duration::from_secs(1));
    }
}

static QUEUE: OnceLock<Arc<LineQueue>> = OnceLock::new();

/// Install the logger for this process: `RUST_LOG` (or `default_filter`) decides what is
/// logged, the writer thread writes it to stderr. A second call changes nothing.
pub fn init(default_filter: &str) {
    let filter =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter))
            .build();
    let max_level = filter.filter();
    let queue = Arc::clone(QUEUE.get_or_init(|| {
        LineQueue::start_styled(QUEUE_LINES, std::io::stderr(), LineStyle::of_this_process())
    }));
    if log::set_boxed_logger(Box::new(QueueLogger { filter, queue })).is_ok() {
        log::set_max_level(max_level);
    }
}

/// Write `text` to stderr after everything logged so far, through the writer thread when
/// the logger is installed (never blocking on a stuck stderr), else directly, ignoring
/// errors: an unwritable stderr must not turn an exit status into a panic.
pub fn to_stderr(text: &str) {
    to_stderr_at(Level::Error, text);
}

/// [`to_stderr`] for a message of `level` (in the journal style, its priority; through
/// the writer thread, when there is one, always the error priority: only errors go there).
pub fn to_stderr_at(level: Level, text: &str) {
    match QUEUE.get() {
        Some(queue) => queue.push_text(text),
        None => {
            let text = match LineStyle::of_this_process() {
                LineStyle::Plain => std::borrow::Cow::Borrowed(text),
                LineStyle::Journal => std::borrow::Cow::Owned(journal_text_at(level, text)),
            };
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    }
}

/// Wait up to `timeout` for the writer to write what is queued (before the process exits).
pub fn flush(timeout: Duration) {
    if let Some(queue) = QUEUE.get() {
        queue.flush(timeout);
    }
}

/// One log record, without its final newline: `[time LEVEL target] message` (plain), or
/// `<N>[LEVEL target] message` with every further line of the message also prefixed
/// `<N>` (journal), so that journald files each line under the record's priority.
fn write_record(
    buf: &mut String,
    style: LineStyle,
    now: SystemTime,
    level: Level,
    target: &str,
    message: fmt::Arguments<'_>,
) {
    match style {
        LineStyle::Plain => {
            write_prefix(buf, now, level, target);
            let _ = buf.write_fmt(message);
        }
        LineStyle::Journal => {
            let start = buf.len();
            let _ = write!(buf, "<{}>[{level:<5} {target}] ", priority(level));
            let _ = buf.write_fmt(message);
            if buf[start..].contains('\n') {
                let prefixed = buf[start..].replace('\n', &format!("\n<{}>", priority(level)));
                buf.truncate(start);
                buf.push_str(&prefixed);
            }
        }
    }
}

/// `text` with every line prefixed by the error priority `<3>` (for the journal).
fn journal_text(text: &str) -> String {
    journal_text_at(Level::Error, text)
}

/// `text` with every line prefixed by `level`'s priority (for the journal).
fn journal_text_at(level: Level, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.split_inclusive('\n') {
        let _ = write!(out, "<{}>", priority(level));
        out.push_str(line);
    }
    out
}

/// `[2024-05-01T12:00:00.123Z INFO  target] ` (env_logger's format with millisecond
/// timestamps).
fn write_prefix(buf: &mut String, now: SystemTime, level: Level, target: &str) {
    let ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let _ = write!(buf, "[{} {level:<5} {target}] ", Rfc3339Millis(ms));
}

/// A Unix time in milliseconds as `2024-05-01T12:00:00.123Z` (UTC).
struct Rfc3339Millis(u64);

impl fmt::Display for Rfc3339Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1000;
        let (year, month, day) = civil_from_days(secs / 86_400);
        let of_day = secs % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60,
            self.0 % 1000
        )
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A repeated warning: the first occurrence is logged, then at most one per interval,
/// each with the number suppressed since the last one logged.
///
/// ```
/// # use std::time::{Duration, Instant};
/// # use votecast::logging::RateLimit;
/// let mut limit = RateLimit::new(Duration::from_secs(10));
/// if let Some(suppressed) = limit.allow(Instant::now()) {
///     log::warn!("send failed{suppressed}");
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RateLimit {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

/// How many occurrences a [`RateLimit`] suppressed; displayed as
/// ` (N more since the last report)`, or nothing when there were none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppressed(pub u64);

impl fmt::Display for Suppressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, " ({n} more since the last report)"),
        }
    }
}

impl RateLimit {
    /// At most one report per `every`.
    pub const fn new(every: Duration) -> RateLimit {
        RateLimit {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// One occurrence at `now`: `Some` when it is to be logged (with the count suppressed
    /// since the last report), `None` when it is only counted.
    pub fn allow(&mut self, now: Instant) -> Option<Suppressed> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(Suppressed(std::mem::take(&mut self.suppressed)))
            }
        }
    }

    /// The condition cleared: its next occurrence is logged at once. Returns how many
    /// occurrences were suppressed and never reported.
    pub fn reset(&mut self) -> u64 {
        self.last = None;
        std::mem::take(&mut self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A sink that holds every write until the test lets it go, and collects the text.
    struct Gate {
        open: mpsc::Receiver<()>,
        out: Arc<Mutex<String>>,
    }

    impl Write for Gate {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _ = self.open.recv();
            self.out
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(bytes));
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A sink that fails every write, like a closed pipe or a full disk.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
    }

    #[test]
    fn a_stuck_writer_drops_and_counts_lines_and_never_blocks_the_logger() {
        let (open, gate) = mpsc::channel();
        let out = Arc::new(Mutex::new(String::new()));
        let queue = LineQueue::start(
            4,
            Gate {
                open: gate,
                out: Arc::clone(&out),
            },
        );
        let started = Instant::now();
        // The writer holds one line in its write; 4 buffers: 1 being written, 3 queued.
        for n in 0..100 {
            queue.push(|buf| buf.push_str(&format!("line {n}")));
        }
        assert!(started.elapsed() < Duration::from_secs(1), "push blocked");
        let dropped = queue.dropped();
        assert_eq!(dropped, 96);
        assert!(
            !queue.flush(Duration::from_millis(20)),
            "stuck: not flushed"
        );
        for _ in 0..10 {
            open.send(()).unwrap();
        }
        assert!(queue.flush(Duration::from_secs(5)));
        queue.push(|buf| buf.push_str("after"));
        for _ in 0..10 {
            open.send(()).unwrap();
        }
        assert!(queue.flush(Duration::from_secs(5)));
        let text = out.lock().unwrap().clone();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "line 0", "{text}");
        assert_eq!(lines.len(), 4 + 2, "{text}");
        assert!(
            lines[4].ends_with(&format!(
                "] {dropped} log lines dropped (stderr was not keeping up)"
            )),
            "{text}"
        );
        assert!(lines[4].contains(" WARN  votecast::logging]"), "{text}");
        assert_eq!(lines[5], "after");
        assert_eq!(queue.dropped(), 0);
    }

    #[test]
    fn write_errors_lose_the_line_and_nothing_else() {
        let queue = LineQueue::start(2, Broken);
        for n in 0..10 {
            queue.push(|buf| buf.push_str(&format!("line {n}")));
            assert!(queue.flush(Duration::from_secs(5)));
        }
        queue.push_text("last words\n");
        assert!(queue.flush(Duration::from_secs(5)));
        assert_eq!(queue.dropped(), 0, "failed writes are not drops");
    }

    #[test]
    fn the_prefix_is_env_loggers() {
        let mut buf = String::new();
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        write_prefix(&mut buf, t, Level::Info, "votecast::driver");
        assert_eq!(buf, "[2023-11-14T22:13:20.123Z INFO  votecast::driver] ");
        for (ms, shown) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
            (1_709_251_199_001, "2024-02-29T23:59:59.001Z"),
        ] {
            assert_eq!(Rfc3339Millis(ms).to_string(), shown);
        }
    }

    #[test]
    fn the_journal_style_needs_journal_stream_to_name_stderr() {
        let stderr = Some((64769, 1234567));
        assert_eq!(
            LineStyle::detect(Some("64769:1234567"), stderr),
            LineStyle::Journal
        );
        for stale in [
            None,
            Some("64769:1234568"),
            Some("64770:1234567"),
            Some("64769"),
            Some("x:1234567"),
            Some(""),
        ] {
            assert_eq!(
                LineStyle::detect(stale, stderr),
                LineStyle::Plain,
                "{stale:?}"
            );
        }
        assert_eq!(
            LineStyle::detect(Some("64769:1234567"), None),
            LineStyle::Plain
        );
    }

    #[test]
    fn journal_lines_carry_the_priority_and_no_timestamp() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let line = |style, level, message: &str| {
            let mut buf = String::new();
            write_record(
                &mut buf,
                style,
                t,
                level,
                "votecast::driver",
                format_args!("{message}"),
            );
            buf
        };
        for (level, n) in [
            (Level::Error, 3),
            (Level::Warn, 4),
            (Level::Info, 6),
            (Level::Debug, 7),
            (Level::Trace, 7),
        ] {
            assert_eq!(
                line(LineStyle::Journal, level, "m"),
                format!("<{n}>[{level:<5} votecast::driver] m")
            );
        }
        assert_eq!(
            line(LineStyle::Journal, Level::Warn, "one\ntwo"),
            "<4>[WARN  votecast::driver] one\n<4>two"
        );
        assert_eq!(
            line(LineStyle::Plain, Level::Warn, "one\ntwo"),
            "[2023-11-14T22:13:20.123Z WARN  votecast::driver] one\ntwo"
        );
        assert_eq!(journal_text("votecast: a\nb\n"), "<3>votecast: a\n<3>b\n");
        assert_eq!(journal_text("no newline"), "<3>no newline");
        assert_eq!(journal_text_at(Level::Warn, "w\n"), "<4>w\n");
    }

    #[test]
    fn a_journal_queue_prefixes_its_own_notices_and_last_words() {
        let (open, gate) = mpsc::channel();
        let out = Arc::new(Mutex::new(String::new()));
        let queue = LineQueue::start_styled(
            1,
            Gate {
                open: gate,
                out: Arc::clone(&out),
            },
            LineStyle::Journal,
        );
        queue.push(|buf| buf.push_str("<6>first"));
        queue.push(|buf| buf.push_str("<6>dropped"));
        for _ in 0..10 {
            open.send(()).unwrap();
        }
        assert!(queue.flush(Duration::from_secs(5)));
        queue.push(|buf| buf.push_str("<6>after"));
        queue.push_text("votecast: error: gone\n");
        for _ in 0..10 {
            open.send(()).unwrap();
        }
        assert!(queue.flush(Duration::from_secs(5)));
        let text = out.lock().unwrap().clone();
        assert_eq!(
            text,
            "<6>first\n<4>[WARN  votecast::logging] 1 log lines dropped (stderr was not \
             keeping up)\n<6>after\n<3>votecast: error: gone\n"
        );
    }

    #[test]
    fn rate_limit_logs_the_first_then_one_per_interval_with_the_count() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut limit = RateLimit::new(Duration::from_secs(10));
        assert_eq!(limit.allow(at(0)), Some(Suppressed(0)));
        assert_eq!(limit.allow(at(1)), None);
        assert_eq!(limit.allow(at(9_999)), None);
        assert_eq!(limit.allow(at(10_000)), Some(Suppressed(2)));
        assert_eq!(limit.allow(at(10_001)), None);
        assert_eq!(limit.reset(), 1, "one suppressed, never reported");
        assert_eq!(limit.allow(at(10_002)), Some(Suppressed(0)), "after reset");
        assert_eq!(Suppressed(0).to_string(), "");
        assert_eq!(Suppressed(3).to_string(), " (3 more since the last report)");
    }
}
