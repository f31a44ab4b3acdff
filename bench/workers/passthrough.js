// The practical limit: a bare JavaScript pass-through Worker, no authentication at all.
export default {
  fetch: (req, env) => fetch(new Request(env.ORIGIN_URL + new URL(req.url).pathname, req)),
};
