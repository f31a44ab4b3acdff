#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_access_gateway::fuzzing::access_token(data));
