// An SSE answer carried through the gateway's list filter (src/edge/mcp.rs, ListStream) by the
// runtime's own stream machinery: each chunk goes through the wasm filter synchronously, and
// the filter's error ends the client's stream (never an unfiltered event). The filter is wasm
// memory: it is freed once the stream has ended, however it ended.
export function filteredStream(origin, filter) {
  let live = true;
  const free = () => {
    if (live) filter.free();
    live = false;
  };
  const filtering = new TransformStream({
    transform(chunk, controller) {
      try {
        const out = filter.push(chunk);
        if (out.length > 0) controller.enqueue(out);
      } catch (error) {
        free();
        throw error;
      }
    },
    flush(controller) {
      live = false; // finish() takes the filter
      const out = filter.finish();
      if (out.length > 0) controller.enqueue(out);
    },
    cancel: free,
  });
  const response = new Response(origin.body.pipeThrough(filtering), origin);
  response.headers.delete("content-length");
  return response;
}
