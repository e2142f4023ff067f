#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    votecast_fuzz::wire_check::check_input(data);
});
