// The proxy's per-request header and fetch work, done on the JavaScript side in one call each
// way: every call from wasm into JavaScript costs a crossing and every string a copy, so the
// headers never cross one by one. Which headers go where is the core's decision
// (src/mcp/proxy.rs): `install` receives its lists once per isolate.

let dropNames = new Set();
let dropPrefixes = [];
let hopByHop = [];
let exposedHeaders = "";
// The ORIGIN_SERVICE binding (a Workers VPC service, any Fetcher) once the configuration
// names it, for the isolate's life; null: fetch() to the URL.
let originBinding = null;

export function install(requestNames, requestPrefixes, responseNames, exposed) {
  dropNames = new Set(requestNames.split(" "));
  dropPrefixes = requestPrefixes.split(" ");
  hopByHop = responseNames.split(" ");
  exposedHeaders = exposed;
}

// `keepAuthorization`: the client's `Authorization` is exactly what the origin must get.
function originHeaders(incoming, own, keepAuthorization) {
  // One copy inside the runtime, then the few names to drop: cheaper than re-adding every
  // header from JavaScript.
  const headers = new Headers(incoming);
  for (const name of incoming.keys()) {
    if (keepAuthorization && name === "authorization") continue;
    if (dropNames.has(name) || dropPrefixes.some((prefix) => name.startsWith(prefix))) {
      headers.delete(name);
    }
  }
  // The gateway's own headers, `name\nvalue\n…` (values never hold a line break).
  const pairs = own.split("\n");
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    headers.set(pairs[i], pairs[i + 1]);
  }
  return headers;
}

export function useOrigin(binding) {
  originBinding = binding;
}

function abortRequest(controller) {
  controller.abort();
}

// Sends `request` on to `url` (through the origin binding if there is one: `url` then names
// the Host and SNI only) and resolves with the origin's answer as the client gets it (see
// `relay`); `body` is what the gateway read of the request, or null to stream its own.
// The abort timer runs only until the origin's headers arrive: a stream may then stay open
// for as long as it likes. Rejects with "timeout" when the timer fired, "body on GET" for a
// GET or HEAD request that carries a body.
export async function forward(request, url, own, body, timeoutMs, keepAuthorization, keepCookies) {
  // fetch() refuses to send these with a body: the client's mistake, not an origin failure.
  if ((request.method === "GET" || request.method === "HEAD") && request.body !== null) {
    throw "body on GET";
  }
  const controller = new AbortController();
  const timer = setTimeout(abortRequest, timeoutMs, controller);
  const init = {
    method: request.method,
    headers: originHeaders(request.headers, own, keepAuthorization),
    body: body ?? request.body,
    redirect: "manual",
    signal: controller.signal,
  };
  let origin;
  try {
    origin = await (originBinding === null ? fetch(url, init) : originBinding.fetch(url, init));
  } catch (error) {
    throw controller.signal.aborted ? "timeout" : error;
  } finally {
    clearTimeout(timer);
  }
  return relay(origin, keepCookies, request.headers.has("origin"));
}

// The origin's answer as the client gets it: status and body stream as they are, the core's
// hop-by-hop headers dropped (the runtime frames Connection and Transfer-Encoding itself),
// `Set-Cookie` too unless `keepCookies` (then filtered by the caller), and
// for a browser's request (`fromBrowser`: it names its `Origin`) the CORS headers added
// unless present. An answer that needs none of that is passed on as it is: re-wrapping a
// response and its headers is a good part of a proxied request's cost.
function relay(origin, keepCookies, fromBrowser) {
  const received = origin.headers;
  const addCors = fromBrowser && !received.has("access-control-allow-origin");
  if (!addCors && !received.has("set-cookie") && !hopByHop.some((name) => received.has(name))) {
    return origin;
  }
  const response = new Response(origin.body, origin);
  const headers = response.headers;
  for (const name of hopByHop) {
    headers.delete(name);
  }
  if (!keepCookies) {
    headers.delete("set-cookie");
  }
  if (addCors) {
    headers.set("access-control-allow-origin", "*");
    headers.set("access-control-expose-headers", exposedHeaders);
  }
  return response;
}

// What the core checks of the origin's answer besides its status, in one call:
// `Content-Type` and `Location`, one per line (an absent header is an empty line).
export function checkedHeaders(response) {
  const headers = response.headers;
  return (headers.get("content-type") ?? "") + "\n" + (headers.get("location") ?? "");
}
