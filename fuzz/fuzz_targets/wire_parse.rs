//! Arbitrary bytes into the frame codec; the checks are `votecast_testkit::fuzz::wire_check`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    votecast_testkit::fuzz::wire_check::check_input(data);
});
