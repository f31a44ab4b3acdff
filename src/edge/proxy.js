// The proxy's per-request header and fetch work, done on the JavaScript side in one call each
// way: every call from wasm into JavaScript costs a crossing and every string a copy, so the
// headers never cross one by one. Which headers go where is the core's decision
// (src/proxy.rs): `install` receives its lists once per isolate.

let dropNames = new Set();
let dropPrefixes = [];
let hopByHop = [];
let exposedHeaders = "";

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

function abortRequest(controller) {
  controller.abort();
}

// Sends `request` on to `url`; `body` is what the gateway read of it, or null to stream the
// request's own. The abort timer runs only until the origin's headers arrive: a stream may
// then stay open for as long as it likes. Rejects with "timeout" when the timer fired.
export async function forward(request, url, own, body, timeoutMs, keepAuthorization) {
  const controller = new AbortController();
  const timer = setTimeout(abortRequest, timeoutMs, controller);
  const init = {
    method: request.method,
    headers: originHeaders(request.headers, own, keepAuthorization),
    body: body ?? request.body,
    redirect: "manual",
    signal: controller.signal,
  };
  try {
    return await fetch(url, init);
  } catch (error) {
    throw controller.signal.aborted ? "timeout" : error;
  } finally {
    clearTimeout(timer);
  }
}

// The origin's answer as the client gets it: status and body stream as they are, hop-by-hop
// headers dropped, `Set-Cookie` too unless `keepCookies`, CORS headers added unless present.
export function relay(origin, keepCookies) {
  const response = new Response(origin.body, origin);
  const headers = response.headers;
  for (const name of hopByHop) {
    headers.delete(name);
  }
  if (!keepCookies) {
    headers.delete("set-cookie");
  }
  if (!headers.has("access-control-allow-origin")) {
    headers.set("access-control-allow-origin", "*");
    headers.set("access-control-expose-headers", exposedHeaders);
  }
  return response;
}
