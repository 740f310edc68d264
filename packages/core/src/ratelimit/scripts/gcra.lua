--[[
  GCRA for one bucket, atomic: the same arithmetic as ../gcra.ts (keep the two in step; redis.test.ts
  checks them against each other on random sequences). One call is one decision: one round trip.

  Input:
    KEYS[1]  the bucket; its value is the TAT (theoretical arrival time of the next call) in ms on the
             Redis clock, as a decimal string. Absent means a full bucket.

    ARGV[1]  op: 'acquire' | 'settle' | 'pause' | 'peek'
    ARGV[2]  ratePerSec
    ARGV[3]  burst
    ARGV[4]  ms: the pause (op 'pause'), the lease (op 'acquire'; 0 = none) or the lag (op 'settle')
    ARGV[5]  now in ms, for tests only. Empty: Redis TIME, so replicas with skewed clocks agree.
    ARGV[6]  op 'settle': the grant's leased TAT, or '' for none
    ARGV[7]  op 'settle': the grant's base TAT, or '' (then: one interval from now)
    ARGV[8]  op 'settle': a channel to PUBLISH "<ms until the next grant>" on, or '' for none

  Output (a Lua number in a reply is truncated to an integer, so fractional values are strings):
    acquire  {1, remaining, settleAfterMs, tat, baseTat}  granted; tat ~= baseTat when leased
             {0, 0, retryAfterMs, tat, ''}       denied (tat unchanged)
    settle   tat
    pause    tat
    peek     {tokens, cooldownMs}
]]
local key = KEYS[1]
local op = ARGV[1]
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])

local now
if ARGV[5] ~= nil and ARGV[5] ~= '' then
  now = tonumber(ARGV[5])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
end

-- %.17g round-trips a double exactly (tostring keeps only 14 digits, i.e. 10 µs at today's epoch).
local function str(x)
  return string.format('%.17g', x)
end

local stored = redis.call('GET', key)
local tat = -math.huge
if stored then
  tat = tonumber(stored)
end

local t = 1000 / rate
local tolerance = (burst - 1) * t

-- At its TAT a bucket is full, which is what an absent key means: expire it then (plus a margin for
-- clock steps), so idle buckets vanish.
local function store(newTat)
  local ttl = math.max(1, math.ceil(newTat - now) + 1000)
  redis.call('SET', key, str(newTat), 'PX', ttl)
  return str(newTat)
end

if op == 'acquire' then
  local start = math.max(tat, now)
  local ahead = start - now
  if ahead > tolerance then
    return {0, 0, str(ahead - tolerance), str(tat), ''}
  end
  local nextTat = start + t
  local remaining = math.floor((burst * t - (nextTat - now)) / t + 1e-9)
  local leaseMs = tonumber(ARGV[4])
  if leaseMs > 0 and remaining == 0 then
    -- The grant emptied the bucket: keep it closed until this call is answered (see Lease).
    return {1, remaining, str(nextTat - now - t), store(nextTat + leaseMs), str(nextTat)}
  end
  local stored = store(nextTat)
  return {1, remaining, str(nextTat - now - t), stored, stored}
elseif op == 'settle' then
  -- The call's arrival may have been as late as its answer: move the bucket as if granted that
  -- much later (lag = ARGV[4]); release a lease that is still in place to exactly that.
  local leased = ARGV[6]
  local base = ARGV[7]
  local newTat
  if base == nil or base == '' then
    newTat = math.max(tat, now + t)
  elseif leased ~= nil and leased ~= '' and stored == leased then
    newTat = tonumber(base) + tonumber(ARGV[4])
  else
    newTat = math.max(tat, tonumber(base) + tonumber(ARGV[4]))
  end
  local result = store(newTat)
  -- Waiting replicas come back when the next grant is possible, instead of polling for it.
  if ARGV[8] ~= nil and ARGV[8] ~= '' then
    redis.call('PUBLISH', ARGV[8], key .. ' ' .. str(math.max(0, newTat - now - tolerance)))
  end
  return result
elseif op == 'pause' then
  -- A 429 means the upstream's bucket is empty: model it as empty after the pause.
  return store(math.max(tat, now + tonumber(ARGV[4]) + tolerance))
elseif op == 'peek' then
  local ahead = math.max(0, tat - now)
  return {math.max(0, math.floor((burst * t - ahead) / t + 1e-9)), str(math.max(0, ahead - tolerance))}
end
return redis.error_reply('gcra.lua: unknown op ' .. tostring(op))
