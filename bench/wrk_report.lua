-- wrk script of bench_me.py: sends the bearer token (BENCH_TOKEN, when set) and prints a
-- machine-readable summary line. wrk counts every answer with status >= 400 in
-- errors.status; bench_me.py refuses a run where that count is not zero.
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
wrk.headers["User-Agent"] = "bench_me/wrk"

done = function(summary, latency, requests)
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
end
