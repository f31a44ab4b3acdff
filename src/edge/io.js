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
