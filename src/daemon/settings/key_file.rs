//! `--key-file`: the shared secrets that authenticate frames, read and checked at start-up.

use std::fmt;
use std::path::Path;

use votecast_core::auth::{self, KeySet};

use super::input_file::{self, MAX_KEY_FILE_LEN};
use super::value::Origin;
use crate::daemon::cli::UsageError;

/// Read and check a key file. Refused (exit 2): unreadable, not a regular file, larger
/// than [`MAX_KEY_FILE_LEN`], readable by every user, malformed, short or weak keys.
/// Group-readable is fine (a root-owned file, group votecast).
pub fn read_key_file(path: &Path, origin: Origin) -> Result<KeySet, UsageError> {
    use std::os::unix::fs::PermissionsExt;
    let problem = |what: fmt::Arguments<'_>| {
        UsageError::new(format!("error: {origin} {}: {what}", path.display()))
    };
    let (text, metadata) =
        input_file::read_text(path, MAX_KEY_FILE_LEN).map_err(|e| problem(format_args!("{e}")))?;
    if metadata.permissions().mode() & 0o004 != 0 {
        return Err(problem(format_args!(
            "the key file is readable by every user; restrict it (chmod o-rwx)"
        )));
    }
    auth::parse_key_file(&text).map_err(|e| problem(format_args!("{e}")))
}
