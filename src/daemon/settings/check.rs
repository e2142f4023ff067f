//! The rules on the merged settings, in one place.
//!
//! The election settings are checked by the core itself ([`Config::new`] and
//! [`Config::validate`], the one definition of what the core accepts); a [`ConfigError`] is
//! turned into a message that names the flag or key it came from and shows the value. On
//! top the daemon adds its own bounds, each with its reason below.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use votecast_core::auth::KeySet;
use votecast_core::election::{Config, ConfigError, MAX_VOTERS};

use super::value::{bad, Origin};
use super::{
    input_file, key_file, Given, RunSettings, VipSettings, ZxidSource, DEFAULT_GROUP,
    DEFAULT_HOOK_TIMEOUT,
};
use crate::daemon::cli::UsageError;
use crate::driver::peers::Peers;
use crate::vip::VipAddr;

/// Longest tick: beyond it a failed leader goes unnoticed for minutes at the default limits.
pub const MAX_TICK: Duration = Duration::from_secs(10);
/// Longest notification back-off: a LOOKING node must still be heard at least once a minute.
pub const MAX_MAX_NOTIFICATION_INTERVAL: Duration = Duration::from_secs(60);
/// Longest hook run: a graceful shutdown waits for the step-down hook up to this long, and
/// service managers give a stopping service about a minute or two; a hook that needs more
/// belongs in a service of its own.
pub const MAX_HOOK_TIMEOUT: Duration = Duration::from_secs(600);

/// Where each election setting came from (given or default), to name it in messages.
struct Origins {
    id: Origin,
    voters: Origin,
    tick: Origin,
    sync_limit: Origin,
    init_limit: Origin,
    finalize_wait: Origin,
    max_notification_interval: Origin,
}

/// The value's origin, or `--key (default)` when it was not given.
fn origin<T>(given: &Option<(T, Origin)>, key: &'static str) -> Origin {
    given.as_ref().map_or(Origin::Default(key), |(_, o)| *o)
}

/// Applies the defaults to `given` and checks everything; reads the key file last.
pub(super) fn settings(given: Given) -> Result<RunSettings, UsageError> {
    let origins = Origins {
        id: origin(&given.id, "id"),
        voters: origin(&given.voters, "voters"),
        tick: origin(&given.tick, "tick"),
        sync_limit: origin(&given.sync_limit, "sync-limit"),
        init_limit: origin(&given.init_limit, "init-limit"),
        finalize_wait: origin(&given.finalize_wait, "finalize-wait"),
        max_notification_interval: origin(
            &given.max_notification_interval,
            "max-notification-interval",
        ),
    };
    let mut election = election_config(&given, &origins)?;
    daemon_bounds(&election, &origins)?;
    let hook_timeout = hook_timeout(given.hook_timeout)?;
    if let (Some(state_file), Some(data_dir)) = (&given.state_file, &given.data_dir) {
        state_file_outside_data_dir(state_file, data_dir)?;
    }
    if let Some(metrics_file) = &given.metrics_file {
        metrics_file_apart(metrics_file, &given)?;
    }
    let track = super::track::check(given.track)?;
    election.keys = match &given.key_file {
        Some((path, origin)) => key_file::read_key_file(path, *origin)?,
        None => KeySet::disabled(),
    };
    let group = given.group.unwrap_or_else(|| {
        DEFAULT_GROUP
            .parse()
            .expect("the default group is a valid address")
    });
    let peers = match &given.peers {
        Some((entries, origin)) => {
            Some(Peers::new(entries, group.port(), given.group).map_err(|e| bad(*origin, e))?)
        }
        None => None,
    };
    let zxid = match (given.zxid, &given.zxid_file) {
        (_, Some((path, origin))) => ZxidSource::File {
            initial: input_file::read_zxid(path)
                .map_err(|e| bad(*origin, format_args!("{}: {e}", path.display())))?,
            path: path.clone(),
        },
        (Some(zxid), None) => ZxidSource::Fixed(zxid),
        (None, None) => ZxidSource::default(),
    };
    Ok(RunSettings {
        election,
        interface: given.interface.unwrap_or_default(),
        group,
        peers,
        zxid,
        data_dir: given.data_dir.map(|(path, _)| path),
        state_file: given.state_file.map(|(path, _)| path),
        metrics_file: given.metrics_file.map(|(path, _)| path),
        on_change: given.on_change,
        hook_timeout,
        key_file: given.key_file.map(|(path, _)| path),
        track,
        vip: vip_settings(
            given.vip,
            given.vip_announce_count,
            given.vip_announce_interval,
        )?,
    })
}

/// Most announcements per address: a few repeats cover a lost frame; more only flood.
pub const MAX_VIP_ANNOUNCE_COUNT: u32 = 20;
/// Longest time between announcements: the last one should come within seconds.
pub const MAX_VIP_ANNOUNCE_INTERVAL: Duration = Duration::from_secs(10);

fn vip_settings(
    addrs: Option<(Vec<VipAddr>, Origin)>,
    count: Option<(u32, Origin)>,
    interval: Option<(Duration, Origin)>,
) -> Result<VipSettings, UsageError> {
    let mut vip = VipSettings::default();
    if let Some((addrs, _)) = addrs {
        vip.addrs = addrs;
    }
    if let Some((count, origin)) = count {
        if count > MAX_VIP_ANNOUNCE_COUNT {
            return Err(bad(
                origin,
                format_args!("expected an integer from 0 to {MAX_VIP_ANNOUNCE_COUNT}, got {count}"),
            ));
        }
        vip.announce_count = count;
    }
    if let Some((interval, origin)) = interval {
        if interval < Duration::from_millis(1) || interval > MAX_VIP_ANNOUNCE_INTERVAL {
            return Err(bad(
                origin,
                format_args!("must be from 1ms to 10s, got {interval:?}"),
            ));
        }
        vip.announce_interval = interval;
    }
    Ok(vip)
}

/// The core's configuration: its defaults, overridden by what was given, checked by the
/// core.
fn election_config(given: &Given, origins: &Origins) -> Result<Config, UsageError> {
    let id = given.id.as_ref().map_or(0, |(id, _)| *id);
    let voters = given.voters.as_ref().map_or(&[][..], |(v, _)| v.as_slice());
    let mut config =
        Config::new(id, voters).map_err(|e| core_error(e, id, voters.len(), origins, None))?;
    if let Some(cluster) = given.cluster {
        config.cluster = cluster;
    }
    if let Some((tick, _)) = given.tick {
        config.tick = tick;
    }
    if let Some((limit, _)) = given.sync_limit {
        config.sync_limit = limit;
    }
    if let Some((limit, _)) = given.init_limit {
        config.init_limit = limit;
    }
    if let Some((wait, _)) = given.finalize_wait {
        config.finalize_wait = wait;
    }
    // Followers take turns answering heartbeats: a quarter of the answers at the defaults.
    // With a state file the leader's lease then grows in steps of two ticks, so its file
    // (lease end kept two ticks ahead) is replaced every other tick instead of every
    // third, which costs less than the answers save (see `Config::sparse_answers`).
    config.sparse_answers = true;
    // One knob for both: as in ZooKeeper, the first notification timeout of an election is
    // the finalize wait, doubling from there up to the maximum.
    config.min_notification_interval = config.finalize_wait;
    if let Some((interval, _)) = given.max_notification_interval {
        config.max_notification_interval = interval;
    }
    config
        .validate()
        .map_err(|e| core_error(e, id, voters.len(), origins, Some(&config)))?;
    Ok(config)
}

/// Names the setting behind a core [`ConfigError`] and says what is wrong with its value.
/// `config` is the configuration that failed [`Config::validate`] (`None`: [`Config::new`]).
fn core_error(
    error: ConfigError,
    id: u64,
    voters: usize,
    o: &Origins,
    config: Option<&Config>,
) -> UsageError {
    let reserved = |origin, reserved: u64| match reserved {
        0 => bad(origin, "id 0 is not allowed"),
        _ => bad(origin, format_args!("id {reserved} is reserved")),
    };
    match (error, config) {
        (ConfigError::ReservedId(r), _) if r == id => reserved(o.id, r),
        (ConfigError::ReservedId(r), _) => reserved(o.voters, r),
        (ConfigError::NoVoters, _) => bad(o.voters, "the list of voters is empty"),
        (ConfigError::TooManyVoters, _) => bad(
            o.voters,
            format_args!("{voters} voters given, at most {MAX_VOTERS} are allowed"),
        ),
        (ConfigError::DuplicateVoter(v), _) => {
            bad(o.voters, format_args!("id {v} is listed more than once"))
        }
        (ConfigError::ZeroTick, _) => bad(o.tick, "must be greater than 0"),
        (ConfigError::LimitTooSmall, Some(c)) if c.sync_limit < 2 => bad(
            o.sync_limit,
            format_args!("must be at least 2, got {}", c.sync_limit),
        ),
        (ConfigError::LimitTooSmall, Some(c)) => init_limit_error(c, o),
        (ConfigError::BadNotificationInterval, Some(c)) if c.finalize_wait.is_zero() => {
            bad(o.finalize_wait, "must be greater than 0")
        }
        (ConfigError::BadNotificationInterval, Some(c))
            if c.max_notification_interval.is_zero() =>
        {
            bad(o.max_notification_interval, "must be greater than 0")
        }
        (ConfigError::BadNotificationInterval, Some(c)) => finalize_wait_error(c, o),
        // Not a setting of the daemon (the clock-drift bound) or not reachable from
        // `Config::new`: say what the core says.
        (other, _) => UsageError::new(format!("error: {other}")),
    }
}

fn init_limit_error(c: &Config, o: &Origins) -> UsageError {
    bad(
        o.init_limit,
        format_args!(
            "must be at least 2 and at least sync-limit ({}), got {}",
            c.sync_limit, c.init_limit
        ),
    )
}

fn finalize_wait_error(c: &Config, o: &Origins) -> UsageError {
    bad(
        o.finalize_wait,
        format_args!(
            "must be less than max-notification-interval ({:?}), got {:?}",
            c.max_notification_interval, c.finalize_wait
        ),
    )
}

/// The daemon's rules beyond the core's, on a configuration the core accepted.
fn daemon_bounds(c: &Config, o: &Origins) -> Result<(), UsageError> {
    if c.tick > MAX_TICK {
        return Err(bad(
            o.tick,
            format_args!("must be at most {MAX_TICK:?}, got {:?}", c.tick),
        ));
    }
    // A new leader gathers its followers within init-limit ticks; allowing less time than a
    // follower waits for its leader (sync-limit) would depose leaders that are still forming.
    if c.init_limit < c.sync_limit {
        return Err(init_limit_error(c, o));
    }
    if c.max_notification_interval > MAX_MAX_NOTIFICATION_INTERVAL {
        return Err(bad(
            o.max_notification_interval,
            format_args!(
                "must be at most {MAX_MAX_NOTIFICATION_INTERVAL:?}, got {:?}",
                c.max_notification_interval
            ),
        ));
    }
    // The back-off starts at the finalize wait; it must have room to grow.
    if c.finalize_wait >= c.max_notification_interval {
        return Err(finalize_wait_error(c, o));
    }
    Ok(())
}

/// `--hook-timeout`: more than 0, at most [`MAX_HOOK_TIMEOUT`].
fn hook_timeout(given: Option<(Duration, Origin)>) -> Result<Duration, UsageError> {
    match given {
        Some((timeout, origin)) if timeout.is_zero() => Err(bad(origin, "must be greater than 0")),
        Some((timeout, origin)) if timeout > MAX_HOOK_TIMEOUT => Err(bad(
            origin,
            format_args!("must be at most {MAX_HOOK_TIMEOUT:?}, got {timeout:?}"),
        )),
        Some((timeout, _)) => Ok(timeout),
        None => Ok(DEFAULT_HOOK_TIMEOUT),
    }
}

/// The data dir belongs to the daemon (epochs, incarnation): a state file inside it
/// could replace one of its files. Compared after resolving symbolic links and `..`.
fn state_file_outside_data_dir(
    (state_file, state_origin): &(PathBuf, Origin),
    (data_dir, data_origin): &(PathBuf, Origin),
) -> Result<(), UsageError> {
    let file = resolved(state_file);
    let dir = resolved(data_dir);
    if file.starts_with(&dir) {
        return Err(bad(
            *state_origin,
            format_args!(
                "{} is inside {data_origin} {}, which holds the node's epochs; \
                 put the file elsewhere",
                state_file.display(),
                data_dir.display()
            ),
        ));
    }
    Ok(())
}

/// The metrics file is replaced whole, with a temporary file beside it: inside the data
/// dir it could replace the epochs, and on the state file or an input file it would
/// overwrite them. Compared after resolving symbolic links and `..`.
fn metrics_file_apart(
    (metrics_file, origin): &(PathBuf, Origin),
    given: &Given,
) -> Result<(), UsageError> {
    if let Some(data_dir) = &given.data_dir {
        state_file_outside_data_dir(&(metrics_file.clone(), *origin), data_dir)?;
    }
    let file = resolved(metrics_file);
    for other in [&given.state_file, &given.zxid_file, &given.key_file]
        .into_iter()
        .flatten()
    {
        if resolved(&other.0) == file {
            return Err(bad(
                *origin,
                format_args!(
                    "{} is also {}; give the metrics a file of their own",
                    metrics_file.display(),
                    other.1
                ),
            ));
        }
    }
    Ok(())
}

/// `path` made absolute, `.` and `..` applied, and its longest existing ancestor
/// canonicalised (symbolic links resolved); the rest may not exist yet.
fn resolved(path: &Path) -> PathBuf {
    let mut absolute = std::env::current_dir().unwrap_or_default();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                absolute.pop();
            }
            Component::CurDir => {}
            other => absolute.push(other),
        }
    }
    let mut rest = Vec::new();
    let mut existing = absolute.as_path();
    loop {
        if let Ok(mut real) = existing.canonicalize() {
            real.extend(rest.iter().rev());
            return real;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return absolute,
        }
    }
}
