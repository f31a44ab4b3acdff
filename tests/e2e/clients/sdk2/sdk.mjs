// The 2.x client for ts_client.mjs --sdk 2, resolved from this folder's own node_modules.
// "auto" negotiation probes with the 2026-07-28 revision's server/discover and falls back to
// initialize when the server is older.
export { Client, StreamableHTTPClientTransport, UnauthorizedError } from "@modelcontextprotocol/client";
export const clientOptions = { versionNegotiation: { mode: "auto" } };
