//! One raw setting value (a flag's text or path, or a config-file value) and its
//! conversion into a typed value, with the rules that concern that one value alone and
//! not the core (an interface name, a multicast group, a non-empty path). The rules on the
//! election settings, which the core defines, are applied to the merged values in
//! [`super::check`]. Every error names the flag or key and shows the value.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::daemon::cli::UsageError;
use crate::driver::peers::{self, PeerEntry};
use crate::duration::parse_duration;
use crate::vip::{VipAddr, MAX_VIPS};

use super::DEFAULT_GROUP;

/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const MAX_INTERFACE_LEN: usize = 15;

/// Where a value came from, for naming it in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Flag(&'static str),
    File(&'static str),
    Default(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(key) => write!(f, "--{key}"),
            Origin::File(key) => write!(f, "config key \"{key}\""),
            Origin::Default(key) => write!(f, "--{key} (default)"),
        }
    }
}

/// The usage error `error: ORIGIN: PROBLEM`.
pub fn bad(origin: Origin, problem: impl fmt::Display) -> UsageError {
    UsageError::new(format!("error: {origin}: {problem}"))
}

/// One raw value as given by the user.
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    /// A flag taken as text.
    Flag(&'static str, &'a str),
    /// A flag taken as a path (any bytes).
    FlagPath(&'static str, &'a Path),
    /// A repeatable flag, every value given.
    FlagList(&'static str, &'a [String]),
    /// A value in the `--config` file.
    File(&'static str, &'a toml::Value),
}

impl<'a> Raw<'a> {
    pub fn origin(&self) -> Origin {
        match self {
            Raw::Flag(key, _) | Raw::FlagPath(key, _) | Raw::FlagList(key, _) => Origin::Flag(key),
            Raw::File(key, _) => Origin::File(key),
        }
    }

    pub fn error(&self, problem: impl fmt::Display) -> UsageError {
        bad(self.origin(), problem)
    }

    /// The value as text, when it is text (a text flag, a UTF-8 path flag, a string in the
    /// file).
    fn text(&self) -> Option<&'a str> {
        match *self {
            Raw::Flag(_, text) => Some(text),
            Raw::FlagPath(_, path) => path.to_str(),
            Raw::FlagList(_, [one]) => Some(one.as_str()),
            Raw::File(_, toml::Value::String(s)) => Some(s.as_str()),
            Raw::File(..) | Raw::FlagList(..) => None,
        }
    }

    /// How the value looks, for "got ..." in messages.
    fn shown(&self) -> String {
        match self {
            Raw::Flag(_, text) => format!("{text:?}"),
            Raw::FlagPath(_, path) => format!("{path:?}"),
            Raw::FlagList(_, items) => format!("{items:?}"),
            Raw::File(_, value) => value.to_string(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Raw::Flag(..) | Raw::FlagPath(..) => "string",
            Raw::FlagList(..) => "list",
            Raw::File(_, v) => v.type_str(),
        }
    }
}

/// An unsigned integer; a TOML integer or a decimal string (TOML integers stop at 2^63-1).
pub fn to_u64(raw: Raw<'_>, expected: &str) -> Result<u64, UsageError> {
    let fail = || raw.error(format_args!("expected {expected}, got {}", raw.shown()));
    match raw {
        Raw::File(_, toml::Value::Integer(i)) => u64::try_from(*i).map_err(|_| fail()),
        _ => raw
            .text()
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(fail),
    }
}

/// An integer that fits a u32; `expected` describes it for the message.
pub fn to_u32(raw: Raw<'_>, expected: &str) -> Result<u32, UsageError> {
    let n = to_u64(raw, expected)?;
    u32::try_from(n).map_err(|_| raw.error(format_args!("expected {expected}, got {n}")))
}

/// A tick count: a positive integer that fits a u32.
pub fn to_limit(raw: Raw<'_>) -> Result<u32, UsageError> {
    let n = to_u64(raw, "a positive integer")?;
    u32::try_from(n).map_err(|_| raw.error(format_args!("must be at most {}, got {n}", u32::MAX)))
}

/// A duration written with its unit (`50ms`); in the file it must be a string.
pub fn to_duration(raw: Raw<'_>) -> Result<Duration, UsageError> {
    match raw.text() {
        Some(text) => parse_duration(text).map_err(|e| raw.error(e)),
        None => {
            let note = match raw {
                Raw::File(_, toml::Value::Integer(_)) | Raw::File(_, toml::Value::Float(_)) => {
                    " (a bare number needs a unit and quotes, e.g. \"50ms\")"
                }
                _ => "",
            };
            Err(raw.error(format_args!(
                "expected a duration such as 50ms, got {}{note}",
                raw.shown()
            )))
        }
    }
}

/// A string (in the file: a TOML string).
pub fn to_str(raw: Raw<'_>) -> Result<&str, UsageError> {
    raw.text().ok_or_else(|| {
        raw.error(format_args!(
            "expected a string, got {} {}",
            raw.type_name(),
            raw.shown()
        ))
    })
}

/// A non-empty path: a flag's (any bytes) or the file's string.
pub fn to_path(raw: Raw<'_>) -> Result<PathBuf, UsageError> {
    let path = match raw {
        Raw::FlagPath(_, path) => path.to_path_buf(),
        _ => PathBuf::from(to_str(raw)?),
    };
    if path.as_os_str().is_empty() {
        return Err(raw.error("the path is empty"));
    }
    Ok(path)
}

/// A shell command: any non-blank string.
pub fn to_command(raw: Raw<'_>) -> Result<String, UsageError> {
    let cmd = to_str(raw)?;
    if cmd.trim().is_empty() {
        return Err(raw.error("the command is empty"));
    }
    Ok(cmd.to_string())
}

/// A list of ids: `1,2,3` as text, or a TOML array of integers or decimal strings. Only the
/// syntax is checked here; which ids and how many are allowed is the core's rule.
pub fn to_ids(raw: Raw<'_>) -> Result<Vec<u64>, UsageError> {
    const EXPECTED: &str = "expected comma-separated ids such as 1,2,3";
    let mut ids = Vec::new();
    if let Raw::File(_, toml::Value::Array(items)) = raw {
        for item in items {
            let id = match item {
                toml::Value::Integer(i) => u64::try_from(*i).ok(),
                toml::Value::String(s) => s.trim().parse::<u64>().ok(),
                _ => None,
            };
            let Some(id) = id else {
                return Err(raw.error(format_args!(
                    "expected a list of ids such as [1, 2, 3], but {item} is not an id"
                )));
            };
            ids.push(id);
        }
        return Ok(ids);
    }
    let Some(text) = raw.text() else {
        return Err(raw.error(format_args!(
            "expected a list of ids such as [1, 2, 3], got {}",
            raw.shown()
        )));
    };
    if text.trim().is_empty() {
        return Ok(ids);
    }
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(raw.error(format_args!("{EXPECTED}, got {text:?} (empty entry)")));
        }
        match part.parse::<u64>() {
            Ok(id) => ids.push(id),
            Err(_) => return Err(raw.error(format_args!("{EXPECTED}, but {part:?} is not an id"))),
        }
    }
    Ok(ids)
}

/// A multicast group `ADDR:PORT` (IPv4 224.0.0.0/4 or IPv6 ff00::/8, port not 0).
pub fn to_group(raw: Raw<'_>) -> Result<SocketAddr, UsageError> {
    let text = to_str(raw)?;
    let addr: SocketAddr = text.parse().map_err(|_| {
        raw.error(format_args!(
            "expected ADDR:PORT such as {DEFAULT_GROUP} or [ff02::1:77]:7277, got {text:?}"
        ))
    })?;
    if !addr.ip().is_multicast() {
        return Err(raw.error(format_args!(
            "{} is not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)",
            addr.ip()
        )));
    }
    if addr.port() == 0 {
        return Err(raw.error("port 0 is not allowed"));
    }
    Ok(addr)
}

/// A list of peers: `A,B,...` as text, or a TOML array of strings. Only each entry's
/// syntax is checked here; the rules on the list are in [`super::check`].
pub fn to_peers(raw: Raw<'_>) -> Result<Vec<PeerEntry>, UsageError> {
    if let Raw::File(_, toml::Value::Array(items)) = raw {
        if items.is_empty() {
            return Err(raw.error(peers::PeerError::Empty));
        }
        return items
            .iter()
            .map(|item| match item {
                toml::Value::String(s) => peers::parse_entry(s).map_err(|e| raw.error(e)),
                other => Err(raw.error(format_args!(
                    "expected a list of addresses such as [\"169.254.0.11\", \"[fe80::2]:7277\"], \
                     but {other} is not a string"
                ))),
            })
            .collect();
    }
    let text = to_str(raw)?;
    peers::parse_list(text).map_err(|e| raw.error(e))
}

/// A Linux interface name: 1 to 15 bytes, no '/' or whitespace.
pub fn to_interface(raw: Raw<'_>) -> Result<String, UsageError> {
    let name = to_str(raw)?;
    if name.is_empty() {
        return Err(raw.error("the interface name is empty"));
    }
    if name.len() > MAX_INTERFACE_LEN {
        return Err(raw.error(format_args!(
            "interface name {name:?} is longer than {MAX_INTERFACE_LEN} bytes"
        )));
    }
    if name.contains('/') || name.chars().any(char::is_whitespace) {
        return Err(raw.error(format_args!(
            "{name:?} is not a valid interface name (no '/' or whitespace)"
        )));
    }
    Ok(name.to_string())
}

/// Floating addresses: the flag once per address (`--vip A --vip B`), or in the file a
/// string or an array of strings (`vip = ["192.168.1.10/24", "fd00::10/64"]`). Each must
/// parse ([`VipAddr`]); no address twice; at most [`MAX_VIPS`].
pub fn to_vips(raw: Raw<'_>) -> Result<Vec<VipAddr>, UsageError> {
    let texts: Vec<&str> = match raw {
        Raw::FlagList(_, items) => items.iter().map(String::as_str).collect(),
        Raw::File(_, toml::Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().ok_or_else(|| {
                    raw.error(format_args!(
                        "expected a list of addresses such as [\"192.168.1.10/24\"], but {item} \
                         is not a string"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        _ => vec![to_str(raw)?],
    };
    if texts.is_empty() {
        return Err(raw.error("the list of floating addresses is empty"));
    }
    if texts.len() > MAX_VIPS {
        return Err(raw.error(format_args!(
            "at most {MAX_VIPS} floating addresses, got {}",
            texts.len()
        )));
    }
    let mut vips: Vec<VipAddr> = Vec::new();
    for text in texts {
        let vip: VipAddr = text.parse().map_err(|e: String| raw.error(e))?;
        if vips.iter().any(|v| v.ip == vip.ip) {
            return Err(raw.error(format_args!("{} is given twice", vip.ip)));
        }
        vips.push(vip);
    }
    Ok(vips)
}
