//! The MCP endpoint's own concerns: what a request is, who may make it, what the answers may
//! hold, which headers cross, and the line each request leaves in the log.

/// The list answers an identity receives, cut down to what it may use.
pub(crate) mod list_filter;
/// `MCP_POLICY`: who may call which tools, read which resources, get which prompts.
pub(crate) mod policy;
/// Header rules for the streaming proxy to the origin.
pub(crate) mod proxy;
/// What the gateway reads of an MCP request, and what it refuses to read.
pub(crate) mod request;
/// The one JSON log line per request.
pub(crate) mod request_log;
