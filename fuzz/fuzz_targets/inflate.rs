#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| whatwg_websocket::fuzzing::inflate(data));
