// An SSE answer carried through the gateway's list filter (src/edge/mcp.rs, ListStream). The
// client reads the runtime's own IdentityTransformStream, which the runtime pumps natively; a
// loop here reads the origin, hands each chunk to the wasm filter synchronously and writes
// what comes out. (A JavaScript TransformStream did the same with more promise turns per
// chunk: about 0.2 ms more to the first byte on the benchmark's stack, bench/README.md.) The
// filter's error ends the client's stream (never an unfiltered event). A client that leaves
// ends the request, and the runtime cancels the origin's stream with it. The filter is wasm
// memory: freed when the stream has ended, or failed; one stranded by a request the runtime
// ended is freed when it is collected.
export function filteredStream(origin, filter) {
  const { readable, writable } = new IdentityTransformStream();
  const writer = writable.getWriter();
  const reader = origin.body.getReader();
  let live = true;
  const pump = async () => {
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      const out = filter.push(read.value);
      if (out.length > 0) await writer.write(out);
    }
    live = false; // finish() takes the filter
    const out = filter.finish();
    if (out.length > 0) await writer.write(out);
    await writer.close();
  };
  pump().catch((error) => {
    if (live) filter.free();
    live = false;
    writer.abort(error).catch(() => {});
    reader.cancel(error).catch(() => {});
  });
  const response = new Response(readable, origin);
  response.headers.delete("content-length");
  return response;
}
