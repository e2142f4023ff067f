//! Arbitrary step sequences for a few election cores; the checks are
//! `votecast_testkit::fuzz::core_sequence`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use votecast_testkit::fuzz::core_sequence::{run, Scenario};

fuzz_target!(|scenario: Scenario| {
    run(&scenario);
});
