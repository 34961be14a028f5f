-- Shared by the wrk scripts: SHA-1 and Base64 (pure Lua on LuaJIT's `bit`), WS-Security
-- UsernameTokens with fresh nonces, the seed's national IDs, a monotonic clock, and the
-- open-loop schedule (wrk2's model: each wrk thread on a fixed timetable its connections share,
-- latency measured from the time a request was *due*, not from when it was sent).
--
-- Configuration comes from environment variables set by bench/run.py:
--   BENCH_USERNAME, BENCH_PASSWORD   the bench partner (SOAP)
--   BENCH_TOKEN                      the bench client's bearer token (REST)
--   BENCH_PERSONS, BENCH_SEED        national_id_for(index, seed=) over range(persons)
--   BENCH_CANDIDATES                 file of "nationalId amount" lines (ConfirmPayment)
--   BENCH_THREADS                    wrk's -t (to split candidates between threads)
--   BENCH_RUN                        a run id: prefix of partner transaction ids
--   BENCH_RATE                       open loop: total requests/s (absent: closed loop)
--   BENCH_CONNECTIONS                open loop: connections in all (default: one per thread)
--   BENCH_WARMUP_S                   open loop: seconds not counted at the start (default 2)
--   BENCH_MAX_REQUESTS               stop each thread after this many requests (soak)
--   BENCH_CUTOFF                     the gateway's settlement cut-off, "HH:MM" (default 23:00)

local bit = require("bit")
local ffi = require("ffi")

local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local lshift, rshift, rol, tobit = bit.lshift, bit.rshift, bit.rol, bit.tobit
local byte, char, format, sub = string.byte, string.char, string.format, string.sub

local M = {}

-- --- clock --------------------------------------------------------------------------------
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local ts = ffi.new("bench_timespec")
local CLOCK_MONOTONIC = 1

--- Microseconds on the monotonic clock.
function M.now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

-- --- SHA-1 (FIPS 180-4) ----------------------------------------------------------------------
local function be32(s, i)
  local a, b, c, d = byte(s, i, i + 3)
  return bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
end

local function u32be(n)
  return char(band(rshift(n, 24), 255), band(rshift(n, 16), 255), band(rshift(n, 8), 255),
    band(n, 255))
end

local w = {}

--- The 20-byte SHA-1 digest of `msg`.
function M.sha1(msg)
  local h0, h1, h2, h3, h4 = tobit(0x67452301), tobit(0xEFCDAB89), tobit(0x98BADCFE),
    tobit(0x10325476), tobit(0xC3D2E1F0)
  local len = #msg
  local bits = len * 8
  msg = msg .. "\128" .. string.rep("\0", (55 - len) % 64)
    .. u32be(math.floor(bits / 4294967296)) .. u32be(bits % 4294967296)
  for chunk = 1, #msg, 64 do
    for i = 0, 15 do
      w[i] = be32(msg, chunk + i * 4)
    end
    for i = 16, 79 do
      w[i] = rol(bxor(w[i - 3], w[i - 8], w[i - 14], w[i - 16]), 1)
    end
    local a, b, c, d, e = h0, h1, h2, h3, h4
    for i = 0, 79 do
      local f, k
      if i < 20 then
        f, k = bor(band(b, c), band(bnot(b), d)), 0x5A827999
      elseif i < 40 then
        f, k = bxor(b, c, d), 0x6ED9EBA1
      elseif i < 60 then
        f, k = bor(band(b, c), band(b, d), band(c, d)), 0x8F1BBCDC
      else
        f, k = bxor(b, c, d), 0xCA62C1D6
      end
      local t = tobit(rol(a, 5) + f + e + k + w[i])
      e, d, c, b, a = d, c, rol(b, 30), a, t
    end
    h0, h1, h2, h3, h4 = tobit(h0 + a), tobit(h1 + b), tobit(h2 + c), tobit(h3 + d),
      tobit(h4 + e)
  end
  return u32be(h0) .. u32be(h1) .. u32be(h2) .. u32be(h3) .. u32be(h4)
end

-- --- Base64 (RFC 4648, with padding) ---------------------------------------------------------
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64chars = {}
for i = 1, 64 do
  b64chars[i - 1] = sub(B64, i, i)
end

--- `raw` as Base64 text.
function M.base64(raw)
  local out = {}
  local n = #raw
  for i = 1, n, 3 do
    local a, b, c = byte(raw, i, i + 2)
    local v = lshift(a, 16) + lshift(b or 0, 8) + (c or 0)
    out[#out + 1] = b64chars[band(rshift(v, 18), 63)] .. b64chars[band(rshift(v, 12), 63)]
      .. (b and b64chars[band(rshift(v, 6), 63)] or "=") .. (c and b64chars[band(v, 63)] or "=")
  end
  return table.concat(out)
end

-- --- WS-Security UsernameToken (PasswordDigest) ----------------------------------------------
local WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
local WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
local PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"

--- Base64(SHA-1(nonce + created + password)), the UsernameToken Profile's PasswordDigest.
function M.password_digest(nonce, created, password)
  return M.base64(M.sha1(nonce .. created .. password))
end

local salt, serial = nil, 0

--- 16 bytes never used before: 8 random bytes of this thread, then a counter.
function M.fresh_nonce()
  if salt == nil then
    local urandom = assert(io.open("/dev/urandom", "rb"))
    salt = urandom:read(8)
    urandom:close()
  end
  serial = serial + 1
  return salt .. u32be(math.floor(serial / 4294967296)) .. u32be(serial % 4294967296)
end

--- A wsse:Security header block with a fresh nonce, created now.
function M.security_header(username, password)
  local nonce = M.fresh_nonce()
  local created = os.date("!%Y-%m-%dT%H:%M:%SZ")
  return '<wsse:Security xmlns:wsse="' .. WSSE .. '" xmlns:wsu="' .. WSU .. '">'
    .. "<wsse:UsernameToken><wsse:Username>" .. username .. "</wsse:Username>"
    .. '<wsse:Password Type="' .. PROFILE .. '#PasswordDigest">'
    .. M.password_digest(nonce, created, password) .. "</wsse:Password>"
    .. '<wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/'
    .. 'oasis-200401-wss-soap-message-security-1.0#Base64Binary">' .. M.base64(nonce)
    .. "</wsse:Nonce><wsu:Created>" .. created .. "</wsu:Created>"
    .. "</wsse:UsernameToken></wsse:Security>"
end

--- A SOAP 1.1 envelope around `body` with a fresh UsernameToken.
function M.soap_envelope(username, password, body)
  return '<?xml version="1.0" encoding="utf-8"?>'
    .. '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    .. ' xmlns:sso="urn:sso:contribution:v1">'
    .. "<soapenv:Header>" .. M.security_header(username, password) .. "</soapenv:Header>"
    .. "<soapenv:Body>" .. body .. "</soapenv:Body></soapenv:Envelope>"
end

M.SOAP_HEADERS = { ["Content-Type"] = "text/xml; charset=utf-8", ["SOAPAction"] = '""' }

-- --- national IDs: app.insured.demo_data.national_id_for, in 64-bit integer arithmetic -----------
local MODULUS = 100000000000ULL -- 10^11
local MULTIPLIER = 7368787397ULL

--- The check digit completing the 12 digits of `head` (app.domain.national_id.check_digit).
function M.check_digit(head)
  local total = 0
  for i = 1, 12 do
    total = total + (byte(head, i) - 48) * (14 - i)
  end
  return tostring((11 - total % 11) % 10)
end

--- The national ID of seed row `index` (national_id_for(index, seed=seed)).
function M.national_id_for(index, seed)
  local body = (ffi.cast("uint64_t", index) * MULTIPLIER + ffi.cast("uint64_t", seed) * 1000003ULL
    + 12345ULL) % MODULUS
  local digits = tostring(body):gsub("ULL$", "")
  local first = (index + seed) % 8 + 1
  local head = sub("12345678", first, first) .. string.rep("0", 11 - #digits) .. digits
  return head .. M.check_digit(head)
end

--- The business day ("YYYY-MM-DD") of a payment made at ``epoch`` (seconds): Bangkok's date,
--- or the next day from the cut-off on, as app.domain.calendar.settlement_day decides it (a
--- confirm whose businessDate is another day is refused: between the cut-off and midnight the
--- counter's day is already tomorrow's).
function M.business_day(epoch)
  local bangkok = epoch + 7 * 3600
  if bangkok % 86400 >= M.cutoff_s then
    bangkok = bangkok + 86400
  end
  return os.date("!%Y-%m-%d", bangkok)
end

--- A uniformly random seeded person's national ID.
function M.random_person()
  return M.national_id_for(math.random(0, M.persons - 1), M.seed)
end

-- --- configuration and thread set-up ------------------------------------------------------------
M.username = os.getenv("BENCH_USERNAME") or ""
M.password = os.getenv("BENCH_PASSWORD") or ""
M.token = os.getenv("BENCH_TOKEN") or ""
M.persons = tonumber(os.getenv("BENCH_PERSONS") or "1000")
M.seed = tonumber(os.getenv("BENCH_SEED") or "1")
M.threads = tonumber(os.getenv("BENCH_THREADS") or "1")
M.run_id = os.getenv("BENCH_RUN") or "run"
M.rate = tonumber(os.getenv("BENCH_RATE") or "0")
M.connections = tonumber(os.getenv("BENCH_CONNECTIONS") or "0")
M.warmup_us = tonumber(os.getenv("BENCH_WARMUP_S") or "2") * 1000000
M.max_requests = tonumber(os.getenv("BENCH_MAX_REQUESTS") or "0")
do
  local hours, minutes = (os.getenv("BENCH_CUTOFF") or "23:00"):match("^(%d%d?):(%d%d)$")
  M.cutoff_s = assert(tonumber(hours), "BENCH_CUTOFF is not HH:MM") * 3600 + tonumber(minutes) * 60
end

local threads = {}

--- wrk's setup(thread): number the threads (used to split work and seed randomness).
function M.setup(thread)
  thread:set("tid", #threads)
  threads[#threads + 1] = thread
end

--- Call from init(): seed this thread's random stream.
function M.init_thread()
  local urandom = assert(io.open("/dev/urandom", "rb"))
  local a, b, c, d = byte(urandom:read(4), 1, 4)
  urandom:close()
  math.randomseed((a * 16777216 + b * 65536 + c * 256 + d) % 2147483647 + (tid or 0))
end

local sent = 0

--- Count a request; stop the thread after BENCH_MAX_REQUESTS (when set).
function M.count_request()
  sent = sent + 1
  if M.max_requests > 0 and sent >= M.max_requests then
    wrk.thread:stop()
  end
end

-- --- open loop --------------------------------------------------------------------------------
-- Each thread sends on its own fixed timetable at BENCH_RATE / N requests/s (N threads), offset
-- by tid / N of a period so the threads interleave. A response's latency runs from the time its
-- request was due: a stalled server makes the next requests late, and their wait is counted (no
-- coordinated omission).
--
-- With one connection per thread (wrk -t N -c N), the thread's one request in flight is the one
-- whose due time is current. With more (BENCH_CONNECTIONS > N), the thread's connections share
-- its timetable: a connection that is free takes the next due time in delay(), waits for it
-- and sends, so a slow answer on one connection does not hold up the requests due meanwhile.
-- Since wrk tells response() nothing of which connection answered, the due time travels with
-- the request as its X-Request-Id (a header the gateway echoes) and is read back from the
-- answer. The due times taken and not yet sent wait in a queue in the order they were taken;
-- a request a timer released takes the oldest (its own, or one due within the same
-- millisecond of wrk's timers). A request no timer released (wrk resends at once on a new
-- connection after a failed one) finds the oldest still in the future: it is timed from when
-- it went out, and counted as resent.
local period_us, due_at, current_due, started_us
local taken, taken_first, taken_last = {}, 1, 0
samples, statuses, bad_body, late, unmatched, resent = {}, {}, "", 0, 0, 0

function M.shares_timetable()
  return M.rate > 0 and M.connections > M.threads
end

function M.open_delay()
  local now = M.now_us()
  if due_at == nil then
    period_us = 1000000 * M.threads / M.rate
    started_us = now
    due_at = now + period_us * (tid or 0) / M.threads
  end
  current_due = due_at
  due_at = due_at + period_us
  if M.shares_timetable() then
    taken_last = taken_last + 1
    taken[taken_last] = current_due
  end
  local wait_ms = (current_due - now) / 1000
  if wait_ms <= 0 then
    late = late + 1
    return 0
  end
  return math.ceil(wait_ms)
end

--- The request as `build` made it, with its due time as X-Request-Id (shared timetable).
function M.tag_due(req)
  local now = M.now_us()
  local due = taken[taken_first]
  if due ~= nil and due <= now + 1000 then -- released by its timer (to wrk's millisecond)
    taken[taken_first] = nil
    taken_first = taken_first + 1
  else
    resent = resent + 1
    due = now
  end
  local line_end = req:find("\r\n", 1, true)
  return req:sub(1, line_end + 1) .. format("X-Request-Id: due.%d.%d\r\n", tid or 0, due)
    .. req:sub(line_end + 2)
end

--- The due time of the request this response answers.
local function due_of(headers)
  if not M.shares_timetable() then
    return current_due
  end
  local id = headers and (headers["x-request-id"] or headers["X-Request-Id"]) or ""
  local due = id:match("^due%.%d+%.(%d+)$")
  if due == nil then
    unmatched = unmatched + 1
    return nil
  end
  return tonumber(due)
end

function M.open_response(status, headers, body)
  local now = M.now_us()
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 300 and bad_body == "" then
    bad_body = sub(body or "", 1, 400)
  end
  local due = due_of(headers)
  if due ~= nil and due - started_us >= M.warmup_us then
    samples[#samples + 1] = now - due
  end
end

-- --- reporting ----------------------------------------------------------------------------------
local function percentile(sorted, p)
  if #sorted == 0 then
    return 0
  end
  local rank = math.max(1, math.ceil(p / 100 * #sorted))
  return sorted[rank]
end

--- wrk's done(): one JSON line on stdout that bench/run.py reads.
function M.done(summary, latency, _requests)
  local errors = summary.errors
  local out = {
    format('"requests": %d', summary.requests),
    format('"duration_us": %d', summary.duration),
    format('"bytes": %d', summary.bytes),
    format('"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}',
      errors.connect, errors.read, errors.write, errors.status, errors.timeout),
  }
  if M.rate > 0 then
    local all, codes, first_bad = {}, {}, ""
    local late_total, unmatched_total, resent_total = 0, 0, 0
    for _, thread in ipairs(threads) do
      for _, v in ipairs(thread:get("samples") or {}) do
        all[#all + 1] = v
      end
      for code, n in pairs(thread:get("statuses") or {}) do
        codes[code] = (codes[code] or 0) + n
      end
      late_total = late_total + (thread:get("late") or 0)
      unmatched_total = unmatched_total + (thread:get("unmatched") or 0)
      resent_total = resent_total + (thread:get("resent") or 0)
      local body = thread:get("bad_body") or ""
      if first_bad == "" then
        first_bad = body:gsub("[^ -~]", "?")
      end
    end
    table.sort(all)
    local parts = {}
    for code, n in pairs(codes) do
      parts[#parts + 1] = format('"%d": %d', code, n)
    end
    out[#out + 1] = format('"open_loop": {"rate": %.1f, "samples": %d, "late_sends": %d,'
      .. ' "unmatched": %d, "resent": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d,'
      .. ' "p999_us": %d, "max_us": %d, "statuses": {%s}, "first_error": %q}',
      M.rate, #all, late_total, unmatched_total, resent_total, percentile(all, 50),
      percentile(all, 90), percentile(all, 99), percentile(all, 99.9), all[#all] or 0,
      table.concat(parts, ", "), first_bad)
  end
  out[#out + 1] = format('"latency_us": {"p50": %d, "p90": %d, "p99": %d, "p999": %d,'
    .. ' "max": %d, "mean": %.1f}', latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean)
  io.write("BENCH_RESULT {" .. table.concat(out, ", ") .. "}\n")
end

--- Install wrk's callbacks; `build` returns the next request.
function M.install(build)
  _G.setup = M.setup
  _G.init = function(_args)
    M.init_thread()
  end
  _G.request = function()
    M.count_request()
    if M.shares_timetable() then
      return M.tag_due(build())
    end
    return build()
  end
  _G.done = M.done
  if M.rate > 0 then
    _G.delay = M.open_delay
    _G.response = M.open_response
  end
end

return M
