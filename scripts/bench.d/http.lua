-- http.lua: wrk script for scripts/bench --http (payqbench/http.py).
-- POST /v1/transfers with PAYQ_BENCH_SIZE transfers a request (1: one
-- object, more: an array), every id unique: RUN-THREAD-N (PAYQ_BENCH_RUN
-- names the cell, so cells never repeat an id), between PAYQ_BENCH_ACCOUNTS
-- accounts PREFIX-acct-1..K opened by the bench. done() prints one JSON
-- line {"wrk": {...}} with the counts and latencies in microseconds.
local prefix = os.getenv("PAYQ_BENCH_PREFIX") or "bench"
local run = os.getenv("PAYQ_BENCH_RUN") or "r"
local size = tonumber(os.getenv("PAYQ_BENCH_SIZE") or "1")
local accounts = tonumber(os.getenv("PAYQ_BENCH_ACCOUNTS") or "1000")
local token = os.getenv("PAYQ_API_TOKEN") or ""
local threads = {}
local counter = 1

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   n = 0
   wrk.method = "POST"
   wrk.headers["Authorization"] = "Bearer " .. token
   wrk.headers["Content-Type"] = "application/json"
end

local function transfer()
   n = n + 1
   local d = (tid * 7919 + n) % accounts + 1
   local c = d % accounts + 1
   return string.format(
      '{"id":"%s-%s-%d-%d","debit_account":"%s-acct-%d","credit_account":"%s-acct-%d","amount":"%d","currency":"EUR"}',
      prefix, run, tid, n, prefix, d, prefix, c, 1 + n % 997)
end

function request()
   local body
   if size == 1 then
      body = transfer()
   else
      local items = {}
      for i = 1, size do items[i] = transfer() end
      body = "[" .. table.concat(items, ",") .. "]"
   end
   return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
   -- errors.status: answers of 400 and above (the API answers a POST 202
   -- or an error, never another 2xx or a 3xx).
   local e = summary.errors
   io.write(string.format(
      '{"wrk":{"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}}\n',
      summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
      latency:percentile(50), latency:percentile(99), latency.max))
end
