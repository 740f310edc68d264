--[[
  Takes one token if one is there and it is the asking replica's turn. Never waits.

    KEYS[1] the bucket   KEYS[2] its turn queue (includes/turns.lua)   KEYS[3] its pace (includes/pace.lua)
    ARGV[1] ratePerSec   ARGV[2] burst
    ARGV[3] lease in ms (0: none): a leased grant flies until settled; one that empties the bucket
            holds it closed until every flying grant is settled, at most this long
    ARGV[4] now in ms, or '' (tests only)
    ARGV[5] the asking replica's id, or '' (then no turn queue)
    ARGV[6] how long the replica's oldest op has waited, in ms
    ARGV[7] the turn grace in ms: how long a reopened bucket's last token is kept for the replica
            whose turn it is; if it does not come by then (it died, or has nothing left), a younger
            one takes the slot and the absent one leaves the queue (it re-queues on its next denial)
    ARGV[8] the pace parameters, or '' (a fixed rate, ARGV[1])

  Returns {1, remaining, settleAfterMs, leased (1/0), rate, adjusted} granted, or
  {0, 0, retryAfterMs, 0, rate, adjusted} denied (bucket unchanged). `rate` is the rate the bucket
  paced at ('' when fixed); `adjusted` 1 / -1 when this call raised / lowered it, else 0. A paced
  acquire ends a probe interval that is over; a denial, or a grant that empties a bucket refilled
  less than an interval ago, is demand. Fractional values are strings: a Lua number in a reply is truncated.
]]
--- @include "includes/bucket"
--- @include "includes/turns"
--- @include "includes/pace"

local key, queue, paceKey = KEYS[1], KEYS[2], KEYS[3]
local rate, burst, leaseMs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = clock(ARGV[4])
local p = paceParams(ARGV[8])
local pace, adjusted, rateStr = nil, 0, ''
if p ~= nil then
  pace = paceLoad(paceKey, p, now)
  local before = pace.probeFrom
  adjusted = paceApply(pace, now, p, 'look', 0)
  rate = pace.rate
  rateStr = str(rate)
  if pace.fresh or pace.probeFrom ~= before then
    paceStore(paceKey, pace)
  end
end
-- Demand: the app wants more than the bucket gives.
local function demand()
  if pace ~= nil then
    pace.demandAt = now
    paceStore(paceKey, pace)
  end
end
local replica = ARGV[5] or ''
local waited = tonumber(ARGV[6] or '') or 0
local grace = tonumber(ARGV[7] or '') or 0

local tat, flying, hold = loadBucket(key, now)
local t = 1000 / rate
local tolerance = (burst - 1) * t
local start = math.max(earliest(tat, flying, hold, now, t), now)
local ahead = start - now
local mine = now - waited

-- Within float rounding of the tolerance is within it (gcra.ts EPSILON_MS).
if ahead > tolerance + 1e-6 then
  demand()
  -- Flying calls keep it shut until they settle, or until the hold ends (their count with it).
  local wait = ahead - tolerance
  if hold > 0 then
    wait = math.min(wait, math.max(hold - now, tat - now - tolerance))
  end
  if replica == '' then
    return {0, 0, str(wait), 0, rateStr, adjusted}
  end
  enqueue(queue, replica, mine, now, tat)
  local first = head(queue, replica)
  local extra = 0
  if first ~= nil and first[2] < mine then
    extra = grace
  end
  return {0, 0, str(wait + extra), 0, rateStr, adjusted}
end

local nextTat = start + t
-- Granted within 1e-6 past the tolerance, the count floors to -1: that grant emptied it (gcra.ts).
local remaining = math.max(0, math.floor((burst * t - (nextTat - now)) / t + 1e-9))
if replica ~= '' then
  local first = head(queue, replica)
  if remaining == 0 and first ~= nil and first[2] < mine then
    -- The last token is an older replica's turn, for a grace after the bucket opened.
    local until_ = effective(tat, hold) - tolerance + grace
    if now < until_ then
      enqueue(queue, replica, mine, now, tat)
      demand()
      return {0, 0, str(until_ - now), 0, rateStr, adjusted}
    end
    redis.call('ZREM', queue, first[1])
  end
  redis.call('ZREM', queue, replica)
end

-- A grant that empties a bucket whose token came less than an interval ago: the app keeps up with
-- the rate (a lone call after a quiet spell also empties a bucket of burst 1, but is no demand).
if remaining == 0 and now - tat < t then
  demand()
end
if leaseMs > 0 then
  -- At most one lease from the hold's start: a hold under way is never renewed, or the count of a
  -- replica that died with grants flying would ride on from hold to hold (gcra.ts: the same).
  if remaining == 0 and hold == 0 then
    hold = now + leaseMs
  end
  store(key, now, nextTat, flying + 1, hold)
  return {1, remaining, str(nextTat - now - t), 1, rateStr, adjusted}
end
store(key, now, nextTat, flying, hold)
return {1, remaining, str(nextTat - now - t), 0, rateStr, adjusted}
