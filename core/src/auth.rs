//! Frame authentication: HMAC-SHA256 truncated to 128 bits, with up to two shared keys.
//!
//! This layer sits beside [`crate::wire`]: it signs and verifies the bytes of one frame and
//! owns the shared keys; it keeps no other state and does no I/O (reading the key file is
//! the daemon's job, parsing its text is here so that it can be tested without files).
//!
//! # What is authenticated
//! The tag is `HMAC-SHA256(key, frame[0..88])` truncated to its first 16 bytes, stored at
//! bytes 88..104; the key id is byte 7. Bytes 0..88 are every field of the frame (key id,
//! cluster, sender, incarnation, sequence, vote, round, epochs, echo); the CRC after the tag
//! is computed over fields and tag, so the tag covers everything a receiver acts on.
//!
//! # Keys and rotation
//! A [`KeySet`] holds one or two keys, each with an id 1..=255. The first key signs every
//! frame we send; a frame is accepted if it carries the id of either key and a valid tag
//! for it. Rotation without downtime: (1) on every node configure `current` then `next`;
//! (2) on every node swap them, so that `next` signs; (3) remove the old key. At every
//! step each node accepts what every other node sends.
//!
//! # Key file
//! One or two lines `ID SECRET` (or a single line `SECRET`, which gets id 1); `#` starts a
//! comment line. The first key signs. `SECRET` is hex (only hex digits, even length) or
//! standard base64 (padding optional), and must decode to at least [`MIN_KEY_LEN`] bytes
//! with at least [`MIN_DISTINCT_BYTES`] distinct values: a password or a repeated pattern
//! is refused as weak. Generate one with `head -c 32 /dev/urandom | base64`.

use core::fmt;

use base64::Engine as _;
use hmac::{Mac, SimpleHmac};
use sha2::{Digest, Sha256};

use crate::wire::{Packet, AUTHENTICATED, FRAME_LEN};

/// Shortest accepted secret, in bytes (the HMAC-SHA256 security level).
pub const MIN_KEY_LEN: usize = 32;
/// Longest accepted secret, in bytes (longer keys add nothing to HMAC-SHA256).
pub const MAX_KEY_LEN: usize = 1024;
/// A random 32-byte key has about 30 distinct byte values; fewer than this means a pattern
/// or text, not random bytes.
pub const MIN_DISTINCT_BYTES: usize = 16;
/// Keys a [`KeySet`] holds: current and next.
pub const MAX_KEYS: usize = 2;
/// Bytes of the truncated tag.
pub const TAG_LEN: usize = 16;

// `SimpleHmac` keeps the keyed inner and outer states, so signing one frame costs the
// compression of the frame and the outer block only; it never allocates.
type HmacSha256 = SimpleHmac<Sha256>;

/// Why a received frame failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// Key id 0: the sender does not authenticate, but we require it.
    Unauthenticated,
    /// A key id we do not have.
    UnknownKey,
    /// The tag does not match (forged or corrupted frame, or a different secret).
    BadTag,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Unauthenticated => "frame not authenticated",
            Error::UnknownKey => "frame signed with an unknown key id",
            Error::BadTag => "bad authentication tag",
        })
    }
}

impl core::error::Error for Error {}

/// One shared key, ready to sign: the keyed HMAC state, never the secret itself.
#[derive(Clone)]
struct Key {
    id: u8,
    mac: HmacSha256,
    /// First bytes of SHA-256(secret): lets operators compare keys across nodes in logs
    /// and lets two key sets be compared without keeping the secret.
    fingerprint: [u8; 8],
}

/// The keys of one node; empty means authentication is off.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: heapless::Vec<Key, MAX_KEYS>,
}

impl KeySet {
    /// Authentication off: frames are sent with key id 0 and a zero tag, and received
    /// frames are accepted whatever their key id and tag.
    pub fn disabled() -> KeySet {
        KeySet::default()
    }

    /// Add a key; the first one added signs. Errors if the id is 0 or already present, if
    /// there are already [`MAX_KEYS`], or if the secret is short or weak.
    pub fn add(&mut self, id: u8, secret: &[u8]) -> Result<(), KeyError> {
        if id == 0 {
            return Err(KeyError::BadKeyId);
        }
        if self.keys.iter().any(|k| k.id == id) {
            return Err(KeyError::DuplicateKeyId(id));
        }
        check_strength(secret)?;
        // Any key length is valid for HMAC, so this cannot fail.
        let mac = <HmacSha256 as Mac>::new_from_slice(secret).map_err(|_| KeyError::TooShort {
            bytes: secret.len(),
        })?;
        let digest = Sha256::digest(secret);
        let mut fingerprint = [0u8; 8];
        fingerprint.copy_from_slice(&digest[..8]);
        self.keys
            .push(Key {
                id,
                mac,
                fingerprint,
            })
            .map_err(|_| KeyError::TooManyKeys)
    }

    /// Whether frames are signed and verified.
    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Id of the key that signs (None when authentication is off).
    pub fn signing_key_id(&self) -> Option<u8> {
        self.keys.first().map(|k| k.id)
    }

    /// `(id, fingerprint)` of every key, signing key first, for logs.
    pub fn describe(&self) -> impl Iterator<Item = (u8, [u8; 8])> + '_ {
        self.keys.iter().map(|k| (k.id, k.fingerprint))
    }

    /// Set the key id and tag of an emitted frame with the signing key, then refresh its
    /// CRC. With authentication off, sets key id 0 and a zero tag.
    pub fn sign(&self, frame: &mut [u8; FRAME_LEN]) {
        let mut packet = Packet::new_unchecked(&mut frame[..]);
        match self.keys.first() {
            None => {
                packet.set_key_id(0);
                packet.set_auth_tag([0; TAG_LEN]);
            }
            Some(key) => {
                packet.set_key_id(key.id);
                let tag = compute_tag(key, &packet);
                packet.set_auth_tag(tag);
            }
        }
        packet.fill_checksum();
    }

    /// Check the key id and tag of a frame whose length and CRC were already checked (a
    /// [`crate::wire::Repr::parse`] success). Always `Ok` with authentication off.
    pub fn verify<T: AsRef<[u8]>>(&self, packet: &Packet<T>) -> Result<(), Error> {
        if self.keys.is_empty() {
            return Ok(());
        }
        let key_id = packet.key_id();
        if key_id == 0 {
            return Err(Error::Unauthenticated);
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or(Error::UnknownKey)?;
        let mut mac = key.mac.clone();
        mac.update(&packet.as_ref()[AUTHENTICATED]);
        // Constant-time comparison of the first TAG_LEN bytes.
        mac.verify_truncated_left(&packet.auth_tag())
            .map_err(|_| Error::BadTag)
    }
}

fn compute_tag<T: AsRef<[u8]>>(key: &Key, packet: &Packet<T>) -> [u8; TAG_LEN] {
    let mut mac = key.mac.clone();
    mac.update(&packet.as_ref()[AUTHENTICATED]);
    let full = mac.finalize().into_bytes();
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&full[..TAG_LEN]);
    tag
}

// Never print secrets; ids and fingerprints identify keys well enough.
impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (id, fingerprint) in self.describe() {
            list.entry(&format_args!("key {id} {}", Fingerprint(fingerprint)));
        }
        list.finish()
    }
}

impl PartialEq for KeySet {
    fn eq(&self, other: &KeySet) -> bool {
        self.describe().eq(other.describe())
    }
}

impl Eq for KeySet {}

/// Hex form of a key fingerprint.
pub struct Fingerprint(pub [u8; 8]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Why a key (or key file) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// No key in the file.
    Empty,
    /// More than [`MAX_KEYS`] keys.
    TooManyKeys,
    /// Key id is not an integer from 1 to 255.
    BadKeyId,
    DuplicateKeyId(u8),
    /// A line is not `ID SECRET` or `SECRET`.
    BadLine,
    /// The secret is neither hex nor base64.
    NotHexOrBase64,
    /// The secret decodes to fewer than [`MIN_KEY_LEN`] (or more than [`MAX_KEY_LEN`]) bytes.
    TooShort {
        bytes: usize,
    },
    TooLong {
        bytes: usize,
    },
    /// Fewer than [`MIN_DISTINCT_BYTES`] distinct byte values.
    Weak {
        distinct: usize,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => write!(f, "no key found (expected a line \"ID SECRET\")"),
            KeyError::TooManyKeys => write!(f, "more than {MAX_KEYS} keys (current and next)"),
            KeyError::BadKeyId => write!(f, "the key id must be an integer from 1 to 255"),
            KeyError::DuplicateKeyId(id) => write!(f, "key id {id} appears twice"),
            KeyError::BadLine => write!(f, "expected \"ID SECRET\" or \"SECRET\""),
            KeyError::NotHexOrBase64 => write!(f, "the secret is neither hex nor base64"),
            KeyError::TooShort { bytes } => write!(
                f,
                "the secret is {bytes} bytes; at least {MIN_KEY_LEN} random bytes are required \
                 (e.g. head -c 32 /dev/urandom | base64)"
            ),
            KeyError::TooLong { bytes } => {
                write!(
                    f,
                    "the secret is {bytes} bytes; at most {MAX_KEY_LEN} are accepted"
                )
            }
            KeyError::Weak { distinct } => write!(
                f,
                "the secret is weak: only {distinct} distinct byte values (random bytes have \
                 about 30 in 32); use e.g. head -c 32 /dev/urandom | base64"
            ),
        }
    }
}

impl core::error::Error for KeyError {}

fn check_strength(secret: &[u8]) -> Result<(), KeyError> {
    if secret.len() < MIN_KEY_LEN {
        return Err(KeyError::TooShort {
            bytes: secret.len(),
        });
    }
    if secret.len() > MAX_KEY_LEN {
        return Err(KeyError::TooLong {
            bytes: secret.len(),
        });
    }
    let mut seen = [false; 256];
    for &byte in secret {
        seen[usize::from(byte)] = true;
    }
    let distinct = seen.iter().filter(|&&s| s).count();
    if distinct < MIN_DISTINCT_BYTES {
        return Err(KeyError::Weak { distinct });
    }
    Ok(())
}

/// Decode a secret written as hex (only hex digits, even length) or standard base64 into
/// `buf`; returns the decoded bytes. A secret longer than [`MAX_KEY_LEN`] is refused
/// before decoding (the buffer is sized for the longest accepted one).
pub fn decode_secret<'a>(text: &str, buf: &'a mut [u8; MAX_KEY_LEN]) -> Result<&'a [u8], KeyError> {
    let text = text.trim();
    if !text.is_empty() && text.len() % 2 == 0 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let len = text.len() / 2;
        if len > MAX_KEY_LEN {
            return Err(KeyError::TooLong { bytes: len });
        }
        for (i, byte) in buf[..len].iter_mut().enumerate() {
            // Every byte is an ASCII hex digit (checked above), so this cannot fail.
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        return Ok(&buf[..len]);
    }
    let unpadded = text.trim_end_matches('=');
    // Unpadded base64 of n bytes has ceil(4n / 3) characters, so this is exact for valid
    // input (invalid input is rejected by the decoder below).
    let len = unpadded.len() * 3 / 4;
    if len > MAX_KEY_LEN {
        return Err(KeyError::TooLong { bytes: len });
    }
    let written = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode_slice(unpadded, &mut buf[..])
        .map_err(|_| KeyError::NotHexOrBase64)?;
    Ok(&buf[..written])
}

/// A key file problem, with the 1-based line it was found on (0 = the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFileError {
    pub line: usize,
    pub error: KeyError,
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.error)
        } else {
            write!(f, "line {}: {}", self.line, self.error)
        }
    }
}

/// Parse the text of a key file (see the module docs for the format).
pub fn parse_key_file(text: &str) -> Result<KeySet, KeyFileError> {
    let mut keys = KeySet::disabled();
    let mut lines = 0usize;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let at = |error| KeyFileError {
            line: line_no,
            error,
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        lines += 1;
        let mut words = line.split_whitespace();
        let (id, secret) = match (words.next(), words.next(), words.next()) {
            (Some(secret), None, None) => (1u8, secret),
            (Some(id), Some(secret), None) => {
                let id: u8 = id.parse().map_err(|_| at(KeyError::BadKeyId))?;
                (id, secret)
            }
            _ => return Err(at(KeyError::BadLine)),
        };
        if lines > MAX_KEYS {
            return Err(at(KeyError::TooManyKeys));
        }
        let mut buf = [0u8; MAX_KEY_LEN];
        let bytes = decode_secret(secret, &mut buf).map_err(at)?;
        keys.add(id, bytes).map_err(at)?;
    }
    if !keys.is_enabled() {
        return Err(KeyFileError {
            line: 0,
            error: KeyError::Empty,
        });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{self, Flags, Repr, ServerState, Vote};

    /// HMAC-SHA256 of a known message with a known
    /// 32-byte key, computed independently with Python's `hmac` module:
    /// `hmac.new(bytes(range(32)), bytes(88), 'sha256').hexdigest()[:32]`.
    const KEY: [u8; 32] = {
        let mut k = [0u8; 32];
        let mut i = 0;
        while i < 32 {
            k[i] = i as u8;
            i += 1;
        }
        k
    };

    fn keys(ids: &[(u8, &[u8])]) -> KeySet {
        let mut set = KeySet::disabled();
        for &(id, secret) in ids {
            set.add(id, secret).unwrap();
        }
        set
    }

    fn frame() -> [u8; FRAME_LEN] {
        let repr = Repr {
            state: ServerState::Leading,
            flags: Flags::ESTABLISHED,
            key_id: 0,
            cluster: 7,
            sender: 3,
            incarnation: 2,
            sequence: 99,
            vote: Vote {
                leader: 3,
                zxid: 10,
                peer_epoch: 4,
                ineligible: false,
            },
            round: 5,
            accepted_epoch: 5,
            epoch: 5,
            echo: 1234,
            auth_tag: [0; 16],
        };
        let mut bytes = [0xa5u8; FRAME_LEN];
        wire::emit_datagram(&repr, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn tag_matches_independent_hmac() {
        let set = keys(&[(9, &KEY)]);
        let mut bytes = [0u8; FRAME_LEN];
        // An all-zero frame body: the tag must equal the reference HMAC over 88 zero bytes
        // with key id 9 written at byte 7 first.
        bytes[7] = 9;
        let packet = Packet::new_unchecked(&bytes[..]);
        let tag = compute_tag(&set.keys[0], &packet);
        // python3: hmac.new(bytes(range(32)), bytes(7)+b'\x09'+bytes(80), 'sha256')
        //          .hexdigest()[:32]
        assert_eq!(
            Fingerprint(tag[..8].try_into().unwrap()).to_string()
                + &Fingerprint(tag[8..].try_into().unwrap()).to_string(),
            REFERENCE_TAG_HEX
        );
    }

    const REFERENCE_TAG_HEX: &str = "cf8a33ac367d143e9fd95b146c46748b";

    #[test]
    fn signed_frame_verifies_and_parses() {
        let set = keys(&[(1, &KEY)]);
        let mut bytes = frame();
        set.sign(&mut bytes);
        let repr = wire::parse_datagram(&bytes, 7).expect("CRC refreshed after signing");
        assert_eq!(repr.key_id, 1);
        assert_ne!(repr.auth_tag, [0; 16]);
        assert_eq!(set.verify(&Packet::new_unchecked(&bytes[..])), Ok(()));
    }

    #[test]
    fn every_covered_bit_flip_fails_verification() {
        let set = keys(&[(1, &KEY)]);
        let mut signed = frame();
        set.sign(&mut signed);
        for bit in 0..(AUTHENTICATED.end * 8) {
            let mut bytes = signed;
            bytes[bit / 8] ^= 1 << (bit % 8);
            let result = set.verify(&Packet::new_unchecked(&bytes[..]));
            // Flipping the key id bits yields another id (unknown) or 0.
            assert!(result.is_err(), "bit {bit} flipped and still verified");
        }
        // And the tag itself.
        for byte in 88..104 {
            let mut bytes = signed;
            bytes[byte] ^= 0x01;
            assert_eq!(
                set.verify(&Packet::new_unchecked(&bytes[..])),
                Err(Error::BadTag)
            );
        }
    }

    #[test]
    fn key_id_zero_and_unknown_ids_are_refused() {
        let set = keys(&[(1, &KEY)]);
        let unsigned = frame();
        assert_eq!(
            set.verify(&Packet::new_unchecked(&unsigned[..])),
            Err(Error::Unauthenticated)
        );
        let mut other = frame();
        keys(&[(2, &KEY)]).sign(&mut other);
        assert_eq!(
            set.verify(&Packet::new_unchecked(&other[..])),
            Err(Error::UnknownKey)
        );
    }

    #[test]
    fn wrong_secret_is_a_bad_tag() {
        let mut other_secret = KEY;
        other_secret[0] ^= 0xff;
        let mut bytes = frame();
        keys(&[(1, &other_secret)]).sign(&mut bytes);
        assert_eq!(
            keys(&[(1, &KEY)]).verify(&Packet::new_unchecked(&bytes[..])),
            Err(Error::BadTag)
        );
    }

    #[test]
    fn rotation_steps_interoperate() {
        let mut next = KEY;
        next.reverse();
        let old_only = keys(&[(1, &KEY)]);
        let step1 = keys(&[(1, &KEY), (2, &next)]);
        let step2 = keys(&[(2, &next), (1, &KEY)]);
        let new_only = keys(&[(2, &next)]);
        // Neighbouring steps accept each other's frames in both directions.
        for (a, b) in [(&old_only, &step1), (&step1, &step2), (&step2, &new_only)] {
            for (signer, verifier) in [(a, b), (b, a)] {
                let mut bytes = frame();
                signer.sign(&mut bytes);
                assert_eq!(verifier.verify(&Packet::new_unchecked(&bytes[..])), Ok(()));
            }
        }
        assert_eq!(step2.signing_key_id(), Some(2));
    }

    #[test]
    fn disabled_signs_zero_and_accepts_anything() {
        let off = KeySet::disabled();
        let mut bytes = frame();
        bytes[88] = 0x55;
        off.sign(&mut bytes);
        let repr = wire::parse_datagram(&bytes, 7).unwrap();
        assert_eq!((repr.key_id, repr.auth_tag), (0, [0; 16]));
        let mut signed = frame();
        keys(&[(1, &KEY)]).sign(&mut signed);
        assert_eq!(off.verify(&Packet::new_unchecked(&signed[..])), Ok(()));
    }

    #[test]
    fn key_file_formats() {
        let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(KEY);
        let single = parse_key_file(&format!("# comment\n\n{hex}\n")).unwrap();
        assert_eq!(single.signing_key_id(), Some(1));
        let two = parse_key_file(&format!("7 {b64}\n 3 {hex} \n")).unwrap();
        assert_eq!(two.describe().map(|(id, _)| id).collect::<Vec<_>>(), [7, 3]);
        // Same secret, same fingerprint, whatever the encoding.
        assert_eq!(
            two.describe().next().unwrap().1,
            single.describe().next().unwrap().1
        );
        let unpadded = b64.trim_end_matches('=');
        assert!(parse_key_file(unpadded).is_ok());
    }

    #[test]
    fn key_file_errors_name_the_line_and_problem() {
        let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
        let err = |text: &str| parse_key_file(text).unwrap_err();
        assert_eq!(err("").error, KeyError::Empty);
        assert_eq!(err("# only a comment\n").error, KeyError::Empty);
        assert_eq!(
            err(&format!("1 {hex}\n2 {hex}\n3 {hex}\n")),
            KeyFileError {
                line: 3,
                error: KeyError::TooManyKeys
            }
        );
        assert_eq!(err(&format!("0 {hex}")).error, KeyError::BadKeyId);
        assert_eq!(err(&format!("256 {hex}")).error, KeyError::BadKeyId);
        assert_eq!(
            err(&format!("1 {hex}\n1 {hex}")).error,
            KeyError::DuplicateKeyId(1)
        );
        assert_eq!(err(&format!("1 {hex} extra")).error, KeyError::BadLine);
        assert_eq!(err("1 not*base64!").error, KeyError::NotHexOrBase64);
        assert_eq!(
            err(&hex[..62]).error,
            KeyError::TooShort { bytes: 31 },
            "31 bytes of hex"
        );
        assert_eq!(err("password123").error, KeyError::NotHexOrBase64);
        assert_eq!(
            err(&"00".repeat(32)).error,
            KeyError::Weak { distinct: 1 },
            "all-zero key"
        );
        assert_eq!(
            err(&"0123456789abcdef".repeat(4)).error,
            KeyError::Weak { distinct: 8 },
            "a repeated pattern"
        );
        let long = "ab".repeat(MAX_KEY_LEN + 1);
        assert!(matches!(
            err(&long).error,
            KeyError::TooLong { .. } | KeyError::Weak { .. }
        ));
        // Messages say what to do.
        assert!(err(&hex[..62]).to_string().contains("at least 32"));
    }

    #[test]
    fn longest_secret_decodes_in_both_encodings_and_one_more_byte_is_refused() {
        use base64::Engine as _;
        let longest: Vec<u8> = (0..MAX_KEY_LEN).map(|i| (i * 7 % 251) as u8).collect();
        let mut buf = [0u8; MAX_KEY_LEN];
        let b64 = base64::engine::general_purpose::STANDARD.encode(&longest);
        assert_eq!(decode_secret(&b64, &mut buf).unwrap(), &longest[..]);
        let hex: String = longest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(decode_secret(&hex, &mut buf).unwrap(), &longest[..]);
        assert!(parse_key_file(&b64).is_ok());

        let mut longer = longest.clone();
        longer.push(3);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&longer);
        let hex: String = longer.iter().map(|b| format!("{b:02x}")).collect();
        for text in [b64, hex] {
            assert_eq!(
                decode_secret(&text, &mut buf),
                Err(KeyError::TooLong {
                    bytes: MAX_KEY_LEN + 1
                })
            );
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let set = keys(&[(1, &KEY)]);
        let text = format!("{set:?}");
        assert!(text.contains("key 1"), "{text}");
        let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.contains(&hex[..16]), "{text}");
    }
}
