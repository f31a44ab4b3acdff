// A real MCP client, the official TypeScript SDK (@modelcontextprotocol/sdk), logging in
// through the gateway. Run with Node 22 (node_modules/.bin/node):
//
//   node ts_client.mjs --url http://127.0.0.1:8787/mcp
//       [--sdk 2]                                  the 2.x client instead (sdk2/), which speaks 2026-07-28
//       [--client-id ID [--client-secret SECRET]]  pre-registered: no Dynamic Client Registration
//       [--client-metadata-url URL]                a Client ID Metadata Document URL as client id
//                                                  (used when the server advertises them)
//       [--redirect-uri URI]                       default http://localhost:<random port>/callback
//       [--refresh-after SECONDS]                  call ping again after the token expired
//       [--deny]                                   refuse on the consent page; expect access_denied
//       [--denied-tool NAME]                       after ping, call NAME (the gateway's policy refuses
//                                                  it), then ping again in the same session
//
// An OAuthClientProvider with in-memory storage; its redirectToAuthorization plays the person
// with a browser (the same steps as tests/support/browser.py), then transport.finishAuth(code)
// and a reconnect. Then initialize, tools/list and tools/call ping.
//
// Prints one JSON object per step on stdout ({"step": ...}), never a token, code or secret; the
// tokens the client ends up holding are described by their shape only (the "tokens" step).
// Exit status: 0 every check passed (with --deny: the denial came back as access_denied); 1 anything else.

import { randomBytes, randomInt } from "node:crypto";
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const RUN_TIMEOUT_MS = 90_000;
const MAX_HOPS = 20;

function emit(step, fields = {}) {
  console.log(JSON.stringify({ step, ...fields }));
}

// ---- The person with a browser -------------------------------------------------------------

/** Host-only cookies with paths (RFC 6265 §5.1.4), enough for a redirect chain on one machine. */
class CookieJar {
  #cookies = new Map();

  store(url, response) {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attributes] = header.split(";");
      const eq = pair.indexOf("=");
      if (eq < 1) continue;
      const cookie = { host: url.hostname, name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), path: defaultPath(url) };
      let expired = false;
      for (const attribute of attributes) {
        const [key, value = ""] = attribute.split("=").map((part) => part.trim());
        if (key.toLowerCase() === "path" && value.startsWith("/")) cookie.path = value;
        if (key.toLowerCase() === "max-age" && Number(value) <= 0) expired = true;
      }
      const id = `${cookie.host} ${cookie.path} ${cookie.name}`;
      if (expired) this.#cookies.delete(id);
      else this.#cookies.set(id, cookie);
    }
  }

  header(url) {
    const sent = [...this.#cookies.values()].filter((c) => c.host === url.hostname && pathMatches(url.pathname, c.path));
    return sent.map((c) => `${c.name}=${c.value}`).join("; ");
  }
}

function defaultPath(url) {
  const last = url.pathname.lastIndexOf("/");
  return last > 0 ? url.pathname.slice(0, last) : "/";
}

function pathMatches(path, cookiePath) {
  return path === cookiePath || (path.startsWith(cookiePath) && (cookiePath.endsWith("/") || path[cookiePath.length] === "/"));
}

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, entity) => {
    if (entity[0] !== "#") return ENTITIES[entity.toLowerCase()] ?? whole;
    return String.fromCodePoint(entity[1].toLowerCase() === "x" ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10));
  });
}

function attributes(text) {
  const found = {};
  for (const [, name, double, single, bare] of text.matchAll(/([^\s="'>\/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    found[name.toLowerCase()] = decodeEntities(double ?? single ?? bare ?? "");
  }
  return found;
}

/** The first form of a page: action, method, hidden inputs and submit buttons (value -> name). */
function firstForm(html) {
  const form = html.match(/<form\b([^>]*)>([\s\S]*?)<\/form>/i);
  if (!form) return null;
  const { action = "", method = "get" } = attributes(form[1]);
  const fields = {};
  const buttons = {};
  for (const [, tag, raw] of form[2].matchAll(/<(input|button)\b([^>]*)>/gi)) {
    const a = attributes(raw);
    if (!a.name) continue;
    if (tag.toLowerCase() === "input" && (a.type ?? "text") === "hidden") fields[a.name] = a.value ?? "";
    if (tag.toLowerCase() === "button" && (a.type ?? "submit") === "submit") buttons[a.value ?? ""] = a.name;
  }
  return { action, method: method.toLowerCase(), fields, buttons };
}

function describe(method, url, status, contentType, body) {
  const text = contentType.includes("text/html")
    ? body.replace(/<(style|script)\b[\s\S]*?<\/\1>|<[^>]+>/gi, " ").split(/\s+/).join(" ").trim()
    : body;
  return `${method} ${url} answered ${status}: ${JSON.stringify(text.slice(0, 600))}`;
}

/** The form post a browser sends when the person clicks Approve or Deny. */
function submitConsent(pageUrl, html, approve, describePage) {
  const form = firstForm(html);
  const choice = approve ? "approve" : "deny";
  if (!form || form.method !== "post" || form.buttons[choice] !== "decision") {
    throw new Error(`no consent form with a "${choice}" button: ${describePage()}`);
  }
  const action = new URL(form.action, pageUrl);
  return {
    url: action.href,
    init: {
      method: "POST",
      body: new URLSearchParams({ ...form.fields, decision: choice }),
      headers: { origin: pageUrl.origin, "sec-fetch-site": action.origin === pageUrl.origin ? "same-origin" : "cross-site" },
    },
  };
}

/**
 * Opens the authorization URL, consents (or refuses), and returns the URL the browser would be
 * sent to at the client: the first Location starting with redirectUriPrefix (not requested).
 */
async function playBrowser(authorizationUrl, redirectUriPrefix, { approve = true, jar = new CookieJar() } = {}) {
  let request = { url: authorizationUrl, init: { method: "GET" } };
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const url = new URL(request.url);
    const headers = new Headers(request.init.headers);
    const cookie = jar.header(url);
    if (cookie) headers.set("cookie", cookie);
    const response = await fetch(url, { ...request.init, headers, redirect: "manual" });
    jar.store(url, response);
    const location = response.headers.get("location");
    const contentType = response.headers.get("content-type") ?? "";
    const body = await response.text();
    if (response.status >= 300 && response.status < 400 && location) {
      const next = new URL(location, url).href;
      if (next.startsWith(redirectUriPrefix)) return next;
      request = { url: next, init: { method: "GET" } };
    } else if (response.status === 200 && contentType.includes("text/html")) {
      request = submitConsent(url, body, approve, () => describe(request.init.method, url, response.status, contentType, body));
    } else {
      throw new Error(describe(request.init.method, url, response.status, contentType, body));
    }
  }
  throw new Error(`more than ${MAX_HOPS} hops without reaching ${redirectUriPrefix}`);
}

// ---- The OAuth client ----------------------------------------------------------------------

class MemoryOAuthProvider {
  #clientInformation;
  #tokens;
  #codeVerifier;

  constructor({ redirectUrl, clientInformation, clientMetadataUrl, onRedirect }) {
    this.redirectUrl = redirectUrl;
    this.clientMetadataUrl = clientMetadataUrl;
    this.#clientInformation = clientInformation;
    this.onRedirect = onRedirect;
    this.sentState = undefined;
    this.discovery = undefined;
  }

  get clientMetadata() {
    return {
      client_name: "mcp-access-gateway e2e (typescript sdk)",
      redirect_uris: [this.redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }

  state() {
    this.sentState = randomBytes(16).toString("base64url");
    return this.sentState;
  }

  clientInformation() {
    return this.#clientInformation;
  }

  saveClientInformation(information) {
    this.#clientInformation = information;
  }

  tokens() {
    return this.#tokens;
  }

  saveTokens(tokens) {
    this.#tokens = tokens;
  }

  saveCodeVerifier(verifier) {
    this.#codeVerifier = verifier;
  }

  codeVerifier() {
    return this.#codeVerifier;
  }

  saveDiscoveryState(state) {
    this.discovery = state;
  }

  discoveryState() {
    return this.discovery;
  }

  redirectToAuthorization(authorizationUrl) {
    return this.onRedirect(authorizationUrl);
  }
}

/** A fetch that emits one `http` step per request: URL without query, status, challenge; for
 * token requests the grant_type and client authentication method, for failed token or
 * registration requests the OAuth error code and description (never a credential). */
async function tracingFetch(input, init = {}) {
  const response = await fetch(input, init);
  const url = new URL(input instanceof Request ? input.url : input);
  const headers = new Headers(init.headers);
  const fields = { method: init.method ?? "GET", url: url.origin + url.pathname, status: response.status };
  for (const name of ["mcp-protocol-version", "mcp-method"]) {
    if (headers.has(name)) fields[name.replaceAll("-", "_")] = headers.get(name);
  }
  if (url.pathname.endsWith("/register")) {
    fields.application_type_sent = JSON.parse(String(init.body ?? "{}")).application_type ?? null;
    fields.application_type_echoed = (await response.clone().json().catch(() => ({}))).application_type ?? null;
  }
  const challenge = response.headers.get("www-authenticate");
  if (challenge) fields.www_authenticate = challenge;
  if (url.pathname.endsWith("/token")) {
    const form = new URLSearchParams(String(init.body ?? ""));
    fields.grant_type = form.get("grant_type");
    fields.client_auth = /^basic /i.test(headers.get("authorization") ?? "") ? "client_secret_basic" : form.has("client_secret") ? "client_secret_post" : "none";
  }
  if (response.status >= 400 && /\/(token|register)$/.test(url.pathname)) {
    const answer = await response.clone().json().catch(() => ({}));
    fields.oauth_error = answer.error;
    fields.oauth_error_description = answer.error_description;
  }
  emit("http", fields);
  return response;
}

async function callPing(client) {
  const result = await client.callTool({ name: "ping", arguments: { message: "e2e" } });
  const text = result.content?.[0]?.type === "text" ? result.content[0].text : null;
  const ok = !result.isError && text === "pong: e2e";
  emit("tools/call", { ok, tool: "ping", text });
  return ok;
}

/** Calls a tool the gateway's policy refuses; emits what the SDK surfaced (never the arguments). */
async function callDenied(client, name) {
  try {
    const result = await client.callTool({ name, arguments: { message: "e2e" } });
    emit("denied", { ok: false, tool: name, surfaced: "result", is_error: result.isError ?? false });
    return false;
  } catch (error) {
    emit("denied", { ok: true, tool: name, surfaced: "error", error_class: error.constructor.name, code: error.code ?? null, message: error.message });
    return true;
  }
}

/** initialize (already done by connect), tools/list, tools/call ping (again after refreshAfter
 * seconds), and with deniedTool a refused call followed by ping in the same session. */
async function mcpSession(url, client, transport, refreshAfter, deniedTool) {
  emit("initialize", { ok: true, url, server: client.getServerVersion()?.name, protocol: transport.protocolVersion });
  const tools = (await client.listTools()).tools.map((tool) => tool.name);
  emit("tools/list", { ok: tools.includes("ping"), tools });
  let ok = tools.includes("ping") && (await callPing(client));
  if (ok && refreshAfter !== undefined) {
    emit("wait", { seconds: refreshAfter });
    await new Promise((resolve) => setTimeout(resolve, refreshAfter * 1000));
    ok = await callPing(client);
  }
  if (ok && deniedTool !== undefined) {
    ok = (await callDenied(client, deniedTool)) && (await callPing(client));
  }
  await transport.terminateSession();
  await client.close();
  return ok;
}

function newClient() {
  return new SDK.Client({ name: "mcp-access-gateway-e2e", version: "1.0.0" }, SDK.clientOptions);
}

/** Connects with OAuth: the first attempt sends the browser through the login, then the code
 * is exchanged and the client connects again, like the SDK's own OAuth example. */
async function connectWithOAuth(url, provider, fetchFn, authorization) {
  const transportOptions = { authProvider: provider, fetch: fetchFn };
  let transport = new SDK.StreamableHTTPClientTransport(new URL(url), transportOptions);
  let client = newClient();
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof SDK.UnauthorizedError) || !authorization.code) throw error;
    await transport.finishAuth(authorization.code, authorization.iss); // 2.x checks iss (RFC 9207) itself
    transport = new SDK.StreamableHTTPClientTransport(new URL(url), transportOptions);
    client = newClient();
    await client.connect(transport);
  }
  return { client, transport };
}

/** What a token looks like, never what it is: a JWS compact token has exactly two dots. */
function shape(token) {
  return token === undefined ? null : { dots: token.split(".").length - 1 };
}

async function run(args) {
  const redirectUri = args["redirect-uri"] ?? `http://localhost:${randomInt(20000, 60000)}/callback`;
  const approve = !args.deny;
  const refreshAfter = args["refresh-after"] === undefined ? undefined : Number(args["refresh-after"]);
  const mode = args["client-id"] ? "pre-registered" : args["client-metadata-url"] ? "cimd" : "dcr";
  emit("start", { client: SDK.name, url: args.url, mode, redirect_uri: redirectUri });

  const authorization = { code: undefined, error: undefined };
  const provider = new MemoryOAuthProvider({
    redirectUrl: redirectUri,
    clientInformation: args["client-id"] ? { client_id: args["client-id"], client_secret: args["client-secret"] } : undefined,
    clientMetadataUrl: args["client-metadata-url"],
    onRedirect: async (authorizationUrl) => {
      const landed = new URL(await playBrowser(authorizationUrl.href, redirectUri, { approve }));
      const answer = landed.searchParams;
      const checks = {
        state_ok: answer.get("state") === provider.sentState,
        iss_ok: answer.get("iss") === provider.discovery?.authorizationServerMetadata?.issuer,
      };
      emit("authorization", {
        consent: approve ? "approve" : "deny",
        resource: authorizationUrl.searchParams.get("resource"),
        error: answer.get("error"),
        code: answer.has("code"),
        iss: answer.get("iss"),
        ...checks,
      });
      if (!checks.state_ok || !checks.iss_ok) throw new Error(`authorization response failed checks: ${JSON.stringify(checks)}`);
      authorization.code = answer.get("code") ?? undefined;
      authorization.iss = answer.get("iss") ?? undefined;
      authorization.error = answer.get("error") ?? undefined;
    },
  });

  let ok = false;
  let error = null;
  try {
    const { client, transport } = await connectWithOAuth(args.url, provider, tracingFetch, authorization);
    ok = await mcpSession(args.url, client, transport, refreshAfter, args["denied-tool"]);
  } catch (caught) {
    error = `${caught.name}: ${caught.message}`;
  }
  const held = provider.tokens();
  if (held) emit("tokens", { access_token: shape(held.access_token), refresh_token: shape(held.refresh_token) });

  if (args.deny) {
    const denied = authorization.error === "access_denied" && provider.tokens() === undefined;
    emit("result", { ok: denied, outcome: denied ? "denied" : "failed", error });
    return denied ? 0 : 1;
  }
  if (ok) {
    emit("result", { ok: true, outcome: "passed" });
    return 0;
  }
  emit("result", { ok: false, outcome: "failed", error });
  return 1;
}

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    "client-id": { type: "string" },
    "client-secret": { type: "string" },
    "client-metadata-url": { type: "string" },
    "redirect-uri": { type: "string" },
    "refresh-after": { type: "string" },
    deny: { type: "boolean", default: false },
    "denied-tool": { type: "string" },
    sdk: { type: "string", default: "1" },
  },
});
if (!values.url || !["1", "2"].includes(values.sdk)) {
  console.error("usage: node ts_client.mjs --url <MCP URL> [--sdk 2] [--client-id ID [--client-secret S] | --client-metadata-url URL] [--redirect-uri URI] [--refresh-after SECONDS] [--deny]");
  process.exit(2);
}
const SDK =
  values.sdk === "2"
    ? { name: "typescript-sdk-2", ...(await import("./sdk2/sdk.mjs")) }
    : { name: "typescript-sdk", Client, StreamableHTTPClientTransport, UnauthorizedError, clientOptions: {} };
setTimeout(() => {
  emit("result", { ok: false, outcome: "failed", error: `no result within ${RUN_TIMEOUT_MS / 1000} s` });
  process.exit(1);
}, RUN_TIMEOUT_MS).unref();
// Exit at once: a failed session can leave the SDK's SSE stream open.
process.exit(await run(values));
