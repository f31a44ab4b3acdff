// The differential suite's origin on the TypeScript SDK 2.x (@modelcontextprotocol/server,
// this folder's package.json, which is why it lives here: bare imports resolve from the file's
// folder). Served as the SDK documents it: createMcpHandler, stateless per request, the
// 2026-07-28 revision only (Mcp-Method and Mcp-Name checked against the body by the SDK).
// The surface and the log are tests/differential/origins/surface.mjs. Run with Node 22:
//
//   node differential_origin.mjs --port PORT --log FILE

import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { McpServer, ResourceTemplate, completable, createMcpHandler } from "@modelcontextprotocol/server";
import * as z from "zod/v4";
import { logDispatch, logger, logHttp, serveSurface } from "../../../differential/origins/surface.mjs";

const { values: args } = parseArgs({ options: { port: { type: "string" }, log: { type: "string" } } });
if (!args.port || !args.log) {
  console.error("usage: node differential_origin.mjs --port PORT --log FILE");
  process.exit(2);
}
const log = logger(args.log);

function newServer() {
  const server = new McpServer({ name: "differential-ts2", version: "1.0.0" });
  serveSurface(server, { ResourceTemplate, completable, z }, log);
  logDispatch(server, log);
  return server;
}

const mcp = createMcpHandler(newServer, { legacy: "reject" });

// Node's http server in front of the handler's fetch interface, as origin.mjs beside this file.
createServer(async (req, res) => {
  logHttp(req, log);
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const hasBody = !["GET", "HEAD"].includes(req.method);
  const request = new Request(new URL(req.url, "http://127.0.0.1"), { method: req.method, headers, body: hasBody ? Buffer.concat(chunks) : undefined });
  let response;
  try {
    response = new URL(request.url).pathname === "/mcp" ? await mcp.fetch(request) : new Response("not found", { status: 404 });
  } catch (error) {
    console.error(error);
    response = Response.json({ error: "origin failure" }, { status: 500 });
  }
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (response.body) for await (const chunk of response.body) res.write(chunk);
  res.end();
}).listen(Number(args.port), "127.0.0.1");
