-- wrk script of bench_heartbeat.py: learners' players sending heartbeats.
--
-- BENCH_VIEWS names a file of lines "view_id position token device". wrk thread t (0-based,
-- BENCH_THREADS threads) takes the lines i with i % BENCH_THREADS == t and rotates over
-- them: each request is the next view's heartbeat POST /api/v1/views/{id}/heartbeat with
-- that learner's bearer token and device, claiming the next BENCH_SEGMENT seconds of the
-- lesson after the view's position (wrapping to 0 at BENCH_LENGTH). So each view
-- advances through its lesson, and two connections never send the same view at once
-- unless a thread has fewer views than connections.
--
-- response() counts answers per status per thread; for every 200 it also counts, per
-- view_id (from the answer's body), the answers and the credited seconds. done() prints
-- one line "BENCH_JSON {...}" (wrk's summary and latency) and, when BENCH_STATE_OUT is
-- set, writes there the final position of every view (for the next run to continue
-- from), the status counts and the per-view 200 counts and credited seconds.

local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  seg = tonumber(os.getenv("BENCH_SEGMENT") or "10")
  len = tonumber(os.getenv("BENCH_LENGTH") or "3000")
  views = {}
  local i = 0
  for line in io.lines(os.getenv("BENCH_VIEWS")) do
    if i % nthreads == tid then
      local id, pos, token, device = line:match("^(%d+) ([%d%.]+) (%S+) (%S+)$")
      table.insert(views, {
        id = id, pos = tonumber(pos),
        path = "/api/v1/views/" .. id .. "/heartbeat",
        headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json",
                   ["X-LMS-Device"] = device, ["User-Agent"] = "bench_heartbeat/wrk"},
      })
    end
    i = i + 1
  end
  n = #views
  k = 0
  -- Flat tables only: wrk copies a thread's table to done() but crashes on nested ones.
  pos_by_view = {}
  for _, v in ipairs(views) do pos_by_view[v.id] = v.pos end
  statuses = {}
  ok_by_view = {}
  credited_by_view = {}
  credited = 0.0
  discarded = 0.0
end

function request()
  k = k % n + 1
  local v = views[k]
  local from = v.pos
  local to = from + seg
  if to > len then
    from, to = 0, seg
  end
  v.pos = to
  pos_by_view[v.id] = to
  local headers = {}
  for name, value in pairs(v.headers) do headers[name] = value end
  return wrk.format("POST", v.path, headers, string.format('{"segments": [[%.1f, %.1f]]}', from, to))
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 then
    local id = body:match('"view_id":%s*(%d+)')
    local c = tonumber(body:match('"credited_seconds":%s*([%d%.eE+-]+)') or "0")
    local d = tonumber(body:match('"discarded_seconds":%s*([%d%.eE+-]+)') or "0")
    credited = credited + c
    discarded = discarded + d
    if id then
      ok_by_view[id] = (ok_by_view[id] or 0) + 1
      credited_by_view[id] = (credited_by_view[id] or 0) + c
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_status": %d, ' ..
    '"errors_timeout": %d, "lat_mean_us": %.1f, "lat_p50_us": %d, "lat_p90_us": %d, ' ..
    '"lat_p99_us": %d, "lat_max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
  local out_path = os.getenv("BENCH_STATE_OUT")
  if not out_path or out_path == "" then return end
  local f = assert(io.open(out_path, "w"))
  for _, t in ipairs(threads) do
    for id, pos in pairs(t:get("pos_by_view")) do
      f:write(string.format("pos %s %.1f\n", id, pos))
    end
    for status, count in pairs(t:get("statuses")) do
      f:write(string.format("status %d %d\n", status, count))
    end
    local cred = t:get("credited_by_view")
    for id, count in pairs(t:get("ok_by_view")) do
      f:write(string.format("ok %s %d %.6f\n", id, count, cred[id] or 0))
    end
    f:write(string.format("sums %.6f %.6f\n", t:get("credited"), t:get("discarded")))
  end
  f:close()
end
