//! rtnetlink: the kernel's interface and address notifications, and (for later use) the
//! requests that add and remove addresses.
//!
//! This module owns the netlink wire format ([`wire`]: a [`wire::Packet`] over a byte
//! buffer, and `Repr`-style [`wire::LinkMessage`] / [`wire::AddressMessage`] that parse
//! without allocation and emit into a caller's buffer) and the socket ([`socket`]:
//! non-blocking, subscribed to multicast groups, a mio event source). It knows nothing
//! of the election or of `--interface`; the driver's link watcher decides what a message
//! means for the node.
//!
//! Plain `nix` netlink sockets and this small parser rather than the netlink-packet-*
//! crates: the daemon needs four message types, this parser allocates nothing and is
//! tested byte for byte (`tests.rs`), and those crates bring a tree of dependencies whose
//! APIs change between minor versions. An address request is a header
//! ([`wire::emit_message`]) around an [`wire::AddressMessage::emit`] with `cache_info`
//! carrying the valid and preferred lifetimes.

pub mod socket;
pub mod wire;

#[cfg(all(test, target_endian = "little"))]
mod tests;

pub use socket::{groups, RouteSocket};
