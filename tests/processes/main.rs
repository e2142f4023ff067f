//! The real `votecast` binary as separate processes on this machine: one test binary per
//! kind of harness. One module per suite:
//!
//! - `check_config`: `votecast check-config` refuses what `run` refuses, prints the rest;
//! - `cli_errors`: bad command lines and config files exit 2 naming the flag or key;
//! - `disk_faults`: a failing epochs write or flush (injected with strace) stops the node,
//!   but only costs a handing-over leader its support for the successor;
//! - `faults`: graceful handovers against the published lease, signals, memory-only restarts;
//! - `hook_process`: `--on-change` hooks of real daemons (lease end, output, process group);
//! - `journal`: `<N>` priority prefixes when stderr is the `JOURNAL_STREAM`, plain otherwise;
//! - `manual`: completion scripts valid in bash/zsh/fish, man pages render without warnings;
//! - `loopback`: clusters of `votecast run` electing over UDP multicast on `lo`;
//! - `loopback_hostile`: authentication, twins and floods of foreign frames on `lo`;
//! - `loopback_scale`: 15 processes on `lo`, and `votecast bench` end to end;
//! - `openwrt`: the procd init script under shellcheck and against stubbed procd functions;
//! - `systemd`: a fake `NOTIFY_SOCKET` (readiness, status, watchdog, reload, stop), the
//!   `--metrics-file` under `promtool`, the shipped units under `systemd-analyze verify`;
//! - `wireshark`: the Lua dissector decodes captured frames as the state files say.
//!
//! Every test uses `lo` only (TTL 1), bounds every wait, and kills and reaps every process
//! it started. Run one suite with a path filter, e.g. `cargo test --test processes loopback::`.

mod check_config;
mod cli_errors;
mod disk_faults;
mod faults;
mod hook_process;
mod journal;
mod loopback;
mod loopback_hostile;
mod loopback_scale;
mod manual;
mod openwrt;
mod systemd;
mod wireshark;
