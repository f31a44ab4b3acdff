// What the request log line reads from the request and its answer, in one call from wasm
// (each header read would otherwise be two crossings and a string copy): cf-ray,
// Mcp-Method and the request's and the answer's Content-Length, one per line (header values
// never hold a line break; an absent header is an empty line).
export function logFacts(request, response) {
  const asked = request.headers;
  return [
    asked.get("cf-ray") ?? "",
    asked.get("mcp-method") ?? "",
    asked.get("content-length") ?? "",
    response.headers.get("content-length") ?? "",
  ].join("\n");
}

// The headers the MCP endpoint reads of every request, in one call from wasm (src/edge/io.rs,
// McpHeaders): Authorization, Content-Type, Content-Encoding, Content-Length, Mcp-Method and
// Mcp-Name, one per line as logFacts has them, then "1" if the request has a body stream.
export function mcpHeaders(request) {
  const asked = request.headers;
  return [
    asked.get("authorization") ?? "",
    asked.get("content-type") ?? "",
    asked.get("content-encoding") ?? "",
    asked.get("content-length") ?? "",
    asked.get("mcp-method") ?? "",
    asked.get("mcp-name") ?? "",
    request.body === null ? "" : "1",
  ].join("\n");
}
