#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_access_gateway::fuzzing::sse_list_filter(data));
