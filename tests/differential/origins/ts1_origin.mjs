// A differential origin on the TypeScript SDK 1.x (@modelcontextprotocol/sdk, the root
// package.json), set up as the SDK documents a stateless server: createMcpExpressApp() (which
// installs express.json()) and a fresh StreamableHTTPServerTransport per POST, GET and DELETE
// answered 405 (src/examples/server/simpleStatelessStreamableHttp.ts, and
// jsonResponseStreamableHttp.ts for --json). Run with Node 22:
//
//   node ts1_origin.mjs --port PORT --log FILE [--json]
//
// The log (surface.mjs): what the SDK dispatched and what the handlers ran or read.

import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { createMcpExpressApp } from "@modelcontextprotocol/sdk/server/express.js";
import { completable } from "@modelcontextprotocol/sdk/server/completable.js";
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { SubscribeRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import * as z from "zod/v4";
import { logDispatch, logger, logHttp, serveSurface } from "./surface.mjs";

const { values: args } = parseArgs({ options: { port: { type: "string" }, log: { type: "string" }, json: { type: "boolean" } } });
if (!args.port || !args.log) {
  console.error("usage: node ts1_origin.mjs --port PORT --log FILE [--json]");
  process.exit(2);
}
const log = logger(args.log);

function getServer() {
  const server = new McpServer({ name: "differential-ts1", version: "1.0.0" });
  serveSurface(server, { ResourceTemplate, completable, z }, log);
  logDispatch(server, log);
  // McpServer has no subscription API: the low-level handler, looking the resource up as the
  // SDK's own resources/read does (by its WHATWG URL serialization).
  server.server.registerCapabilities({ resources: { subscribe: true } });
  server.server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    log({ event: "subscribe", uri: new URL(request.params.uri).href });
    return {};
  });
  return server;
}

const methodNotAllowed = (req, res) =>
  res.writeHead(405).end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message: "Method not allowed." }, id: null }));

const app = createMcpExpressApp();
app.post("/mcp", async (req, res) => {
  const server = getServer();
  try {
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: args.json });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
    res.on("close", () => {
      transport.close();
      server.close();
    });
  } catch (error) {
    console.error("Error handling MCP request:", error);
    if (!res.headersSent) res.status(500).json({ jsonrpc: "2.0", error: { code: -32603, message: "Internal server error" }, id: null });
  }
});
app.get("/mcp", methodNotAllowed);
app.delete("/mcp", methodNotAllowed);

// app.listen(port) is http.createServer(app).listen(port): the same, with the request logged first.
createServer((req, res) => {
  logHttp(req, log);
  app(req, res);
}).listen(Number(args.port), "127.0.0.1");
