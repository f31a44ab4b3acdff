// A real MCP origin speaking only the 2026-07-28 revision: @modelcontextprotocol/server 2.x
// (createMcpHandler, stateless per-request serving, `server/discover`, the Mcp-Method and
// Mcp-Name headers checked against the body) with one tool, `ping`. Run with Node 22:
//
//   node origin.mjs --port PORT --issuer ACCESS_ISSUER --audience AUD --email EMAIL --request-log FILE
//
// Like the seed's FastMCP origin (tests/origin/server.py) it trusts only the Access JWT in the
// `Authorization: Bearer` header the gateway forwards: RS256 against the issuer's JWKS, the
// issuer, an `exp`, and the one allowed email; unlike the seed it also checks the audience
// (Access sets `aud` to the redirect URI, i.e. the gateway's /callback). Anything else is `401`.
//
// One JSON line per request to the request log, written when the answer starts: HTTP method,
// path, whether a bearer came, the header names, the values of MCP-Protocol-Version, Mcp-Method
// and Mcp-Name, the JSON-RPC method of the body, and the status. Never a credential.

import { appendFileSync } from "node:fs";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { McpServer, OAuthError, OAuthErrorCode, createMcpHandler, requireBearerAuth } from "@modelcontextprotocol/server";
import { createRemoteJWKSet, jwtVerify } from "jose";
import * as z from "zod/v4";

const { values: args } = parseArgs({
  options: {
    port: { type: "string" },
    issuer: { type: "string" },
    audience: { type: "string" },
    email: { type: "string" },
    "request-log": { type: "string" },
  },
});
for (const name of ["port", "issuer", "audience", "email", "request-log"]) {
  if (!args[name]) {
    console.error(`usage: node origin.mjs --port PORT --issuer ISSUER --audience AUD --email EMAIL --request-log FILE (missing --${name})`);
    process.exit(2);
  }
}

const jwks = createRemoteJWKSet(new URL(`${args.issuer}/jwks`));

const gate = requireBearerAuth({
  verifier: {
    async verifyAccessToken(token) {
      try {
        const { payload } = await jwtVerify(token, jwks, {
          algorithms: ["RS256"],
          issuer: args.issuer,
          audience: args.audience,
          requiredClaims: ["exp"],
        });
        if (payload.email !== args.email) throw new Error("email not allowed");
        return { token, clientId: args.audience, scopes: [], expiresAt: payload.exp };
      } catch (error) {
        throw new OAuthError(OAuthErrorCode.InvalidToken, `not an Access JWT this origin accepts (${error.code ?? error.message})`);
      }
    },
  },
});

function newServer() {
  const server = new McpServer({ name: "sdk2-origin", version: "1.0.0" });
  server.registerTool(
    "ping",
    { description: "Answers pong", inputSchema: z.object({ message: z.string().default("hello") }) },
    async ({ message }) => ({ content: [{ type: "text", text: `pong: ${message}` }] }),
  );
  return server;
}

// Modern only: a 2025-era request is refused, so a passing client has spoken 2026-07-28.
const mcp = createMcpHandler(newServer, { legacy: "reject" });

async function serve(request) {
  if (new URL(request.url).pathname !== "/mcp") return new Response("not found", { status: 404 });
  const auth = await gate(request);
  if (auth instanceof Response) return auth;
  return mcp.fetch(request, { authInfo: auth });
}

function logLine(entry) {
  appendFileSync(args["request-log"], JSON.stringify(entry) + "\n");
}

function rpcMethod(body) {
  try {
    return JSON.parse(body.toString("utf8")).method ?? null;
  } catch {
    return null;
  }
}

createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const entry = {
    method: req.method,
    path: req.url,
    authorization: headers.has("authorization"),
    headers: [...headers.keys()],
    mcp_protocol_version: headers.get("mcp-protocol-version"),
    mcp_method: headers.get("mcp-method"),
    mcp_name: headers.get("mcp-name"),
    rpc_method: rpcMethod(body),
  };
  let response;
  try {
    const hasBody = !["GET", "HEAD"].includes(req.method);
    response = await serve(new Request(new URL(req.url, "http://127.0.0.1"), { method: req.method, headers, body: hasBody ? body : undefined }));
  } catch (error) {
    console.error(error);
    response = Response.json({ error: "origin failure" }, { status: 500 });
  }
  logLine({ ...entry, status: response.status });
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (response.body) for await (const chunk of response.body) res.write(chunk);
  res.end();
}).listen(Number(args.port), "127.0.0.1");
