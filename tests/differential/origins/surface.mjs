// The MCP surface every differential origin serves, registered through the SDK's own
// McpServer API (1.x and 2.x share it), and the origin's own log: one JSON line per thing it
// actually ran or read, appended synchronously before the answer is sent, so a test that has
// read the whole answer has every line of its request.
//
// The SDK's classes come in as arguments: bare imports resolve from the importing file's
// folder, and the 1.x and 2.x SDKs live in different node_modules.

import { appendFileSync } from "node:fs";

export const TOOLS = ["search", "delete_all"];
export const RESOURCES = { "q3-report": "file:///reports/q3.pdf", "finance-secret": "file:///finance/secret.pdf" };
export const TEMPLATES = { reports: "file:///reports/{name}.pdf", finance: "file:///finance/{name}.pdf" };
export const PROMPTS = ["summary", "payroll"];

export function logger(path) {
  return (entry) => appendFileSync(path, JSON.stringify(entry) + "\n");
}

export function serveSurface(server, { ResourceTemplate, completable, z }, log) {
  for (const name of TOOLS) {
    server.registerTool(name, { description: `the ${name} tool`, inputSchema: { q: z.string().optional() } }, async () => {
      log({ event: "tool", name });
      return { content: [{ type: "text", text: `${name} ran` }] };
    });
  }
  for (const [name, uri] of Object.entries(RESOURCES)) {
    server.registerResource(name, uri, { mimeType: "text/plain" }, async (url) => {
      log({ event: "resource", uri: url.href });
      return { contents: [{ uri: url.href, text: `contents of ${uri}` }] };
    });
  }
  for (const [name, uriTemplate] of Object.entries(TEMPLATES)) {
    const complete = {
      name: (value) => {
        log({ event: "complete", template: uriTemplate });
        return ["q3", "q4"].filter((option) => option.startsWith(value ?? ""));
      },
    };
    const template = new ResourceTemplate(uriTemplate, { list: undefined, complete });
    server.registerResource(name, template, { mimeType: "text/plain" }, async (url) => {
      log({ event: "resource", uri: url.href, template: uriTemplate });
      return { contents: [{ uri: url.href, text: `contents of ${url.href}` }] };
    });
  }
  for (const name of PROMPTS) {
    const topic = completable(z.string(), (value) => {
      log({ event: "complete", prompt: name });
      return ["q3", "q4"].filter((option) => option.startsWith(value ?? ""));
    });
    server.registerPrompt(name, { description: `the ${name} prompt`, argsSchema: { topic } }, ({ topic }) => {
      log({ event: "prompt", name });
      return { messages: [{ role: "user", content: { type: "text", text: `${name} of ${topic}` } }] };
    });
  }
}

// Every JSON-RPC message the SDK's transport hands to the server, as the SDK parsed it: the
// transport's onmessage, wrapped once the server has connected to it.
export function logDispatch(server, log) {
  const connect = server.connect.bind(server);
  server.connect = async (transport) => {
    await connect(transport);
    const dispatch = transport.onmessage;
    transport.onmessage = (message, extra) => {
      if (typeof message?.method === "string") log({ event: "rpc", method: message.method, id: message.id ?? null });
      return dispatch(message, extra);
    };
  };
}

// One line per HTTP request as it arrives, before any of the SDK's code runs.
export function logHttp(req, log) {
  log({ event: "http", method: req.method, path: req.url, probe: req.headers["x-probe"] ?? null });
}
