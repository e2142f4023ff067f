#![no_main]

use libfuzzer_sys::fuzz_target;
use votecast_fuzz::core_sequence::Scenario;

fuzz_target!(|scenario: Scenario| {
    votecast_fuzz::core_sequence::run(&scenario);
});
